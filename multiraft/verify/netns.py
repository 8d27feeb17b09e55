"""One network namespace per store, so that `verify` can cut the links
between stores while its clients still reach every one of them.

Each store gets a namespace with one end of a veth pair; the other ends
hang on a bridge in the root namespace, which holds the clients' address
(10.77.X.254/24, store i at 10.77.X.i). `cut(a, b)` adds a blackhole route
to the other's address in both namespaces, so packets between the two are
dropped in either direction and nothing else changes: no nftables or
iptables needed, only `ip` (iproute2) and root. Names carry the pid, so
runs side by side do not meet; `close()` removes everything, and the
`with` block calls it on errors and Ctrl-C too.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from types import TracebackType
from typing import Self

IP_TIMEOUT = 10.0
"""Seconds one `ip` command may take (it never should)."""

CLIENT_HOST = 254
"""The root namespace's address on the bridge ends in this."""
MAX_STORES = 99
"""Interface names are at most 15 bytes: mrv + pid + letter + h + store."""

_letters = itertools.cycle("abcdefghijklmnopqrstuvwxyz")


class NetnsError(RuntimeError):
    """An `ip` command failed: the command and what it said."""


def ip(*args: str) -> None:
    """Run `ip ARGS`; NetnsError with its stderr if it fails."""
    try:
        done = subprocess.run(
            ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NetnsError(f"ip {' '.join(args)}: {e}") from None
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")


def available() -> str | None:
    """None if this process can make namespaces, else why not (a probe
    namespace, veth pair and bridge are made and removed)."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) on PATH"
    if os.geteuid() != 0:
        return "needs root (network namespaces: `ip netns add`)"
    probe = f"mrv{os.getpid()}P"
    try:
        ip("netns", "add", probe)
        ip("link", "add", f"{probe}h", "type", "veth", "peer", "name", f"{probe}n")
        ip("link", "set", f"{probe}n", "netns", probe)
        ip("link", "add", f"{probe}b", "type", "bridge")
    except NetnsError as e:
        return str(e)
    finally:
        for link in (f"{probe}b", f"{probe}h"):
            with contextlib.suppress(NetnsError):
                ip("link", "del", link)
        with contextlib.suppress(NetnsError):
            ip("netns", "del", probe)
    return None


class Network:
    """Namespaces for stores 1..n on a private /24, torn down by `close()`."""

    def __init__(self, stores: int) -> None:
        if not 1 <= stores <= MAX_STORES:
            raise ValueError(f"1 to {MAX_STORES} stores, not {stores}")
        self.stores = stores
        self.tag = f"mrv{os.getpid()}{next(_letters)}"
        """Prefix of every name made here: this process's pid, and a letter
        for each Network it makes."""
        self.bridge = f"{self.tag}b"
        self.subnet = ""
        self._made: list[tuple[str, str]] = []
        """What exists, in order made: ("link" | "netns", name)."""
        self._cuts: set[tuple[int, int]] = set()

    def namespace(self, store: int) -> str:
        return f"{self.tag}-{store}"

    def addr(self, store: int) -> str:
        """The store's IP address, in its namespace."""
        return f"{self.subnet}.{store}"

    def launcher(self, store: int) -> list[str]:
        """The prefix that runs a command inside the store's namespace (`ip
        netns exec` execs it: the pid stays the command's)."""
        return ["ip", "netns", "exec", self.namespace(store)]

    def __enter__(self) -> Self:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        """Make the bridge and one namespace per store, all links up (after
        removing what runs that died without cleaning up left)."""
        remove_stale()
        self.subnet = _free_subnet(os.getpid())
        self._make("link", self.bridge, "link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.subnet}.{CLIENT_HOST}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for i in range(1, self.stores + 1):
            ns, host, inner = self.namespace(i), f"{self.tag}h{i}", f"{self.tag}n{i}"
            self._make("netns", ns, "netns", "add", ns)
            self._make("link", host, "link", "add", host, "type", "veth", "peer", "name", inner)
            ip("link", "set", host, "master", self.bridge, "up")
            ip("link", "set", inner, "netns", ns)
            ip("-n", ns, "addr", "add", f"{self.addr(i)}/24", "dev", inner)
            ip("-n", ns, "link", "set", inner, "up")
            ip("-n", ns, "link", "set", "lo", "up")

    def _make(self, kind: str, name: str, *args: str) -> None:
        ip(*args)
        self._made.append((kind, name))

    def cut(self, a: int, b: int) -> None:
        """Drop every packet between stores a and b, both ways."""
        for src, dst in ((a, b), (b, a)):
            if (src, dst) not in self._cuts:
                ip("-n", self.namespace(src), "route", "add", "blackhole", f"{self.addr(dst)}/32")
                self._cuts.add((src, dst))

    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Cut every link between stores of different groups."""
        sides = [set(g) for g in groups]
        for n, side in enumerate(sides):
            for other in sides[n + 1 :]:
                for a in side:
                    for b in other:
                        self.cut(a, b)

    def isolate(self, store: int) -> None:
        """Cut `store` off from every other store (clients still reach it)."""
        self.partition([[store], [i for i in range(1, self.stores + 1) if i != store]])

    def heal(self) -> None:
        """Remove every cut."""
        for src, dst in sorted(self._cuts):
            ip("-n", self.namespace(src), "route", "del", "blackhole", f"{self.addr(dst)}/32")
            self._cuts.discard((src, dst))

    def close(self) -> None:
        """Remove every link and namespace made (the host ends first: a
        namespace is deleted asynchronously by the kernel); never raises."""
        while self._made:
            kind, name = self._made.pop()
            with contextlib.suppress(NetnsError):
                ip(kind, "del", name)
        self._cuts.clear()


def remove_stale() -> list[str]:
    """Remove the namespaces and links of verify runs that are gone (a
    SIGKILLed run cannot clean up): names made here carry their run's pid;
    one whose process no longer exists is deleted. Returns the names."""
    links = _listed(["-o", "link", "show"], r"^\d+: ([^:@]+)")
    spaces = _listed(["netns", "list"], r"^(\S+)")
    stale: list[str] = []
    # Host ends of veth pairs and bridges first, then the namespaces.
    for kind, names in (("link", links), ("netns", spaces)):
        for name in names:
            pid = _pid_of(name)
            if pid is not None and not _alive(pid):
                with contextlib.suppress(NetnsError):
                    ip(kind, "del", name)
                stale.append(name)
    return stale


def _listed(args: list[str], pattern: str) -> list[str]:
    try:
        done = subprocess.run(
            ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return re.findall(pattern, done.stdout, re.MULTILINE)


def _pid_of(name: str) -> int | None:
    """The pid in a name this module made (mrv<pid><letter>...), else None."""
    match = re.match(r"mrv(\d+)[a-zP]", name)
    return int(match[1]) if match else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_subnet(seed: int) -> str:
    """A 10.77.X prefix no interface of the root namespace uses, from X =
    seed mod 250 on."""
    done = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"],
        capture_output=True,
        text=True,
        timeout=IP_TIMEOUT,
        check=False,
    )
    used = {int(x) for x in re.findall(r"inet 10\.77\.(\d+)\.", done.stdout)}
    for step in range(250):
        x = (seed + step) % 250 + 1
        if x not in used:
            return f"10.77.{x}"
    raise NetnsError("every 10.77.X.0/24 is in use")
