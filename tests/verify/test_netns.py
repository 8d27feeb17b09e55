"""Network namespaces for `verify`'s partitions: refused with the reason
where they cannot be made; where they can, a cut drops the traffic between
two stores both ways while the clients (the root namespace) still reach
both, heal restores it, and nothing is left behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from multiraft.verify import netns
from multiraft.verify.netns import Network

REASON = netns.available()
needs_netns = pytest.mark.skipif(REASON is not None, reason=f"no network namespaces: {REASON}")

PORT = 7070
SERVE = (
    "import socket, sys\n"
    "s = socket.create_server((sys.argv[1], int(sys.argv[2])))\n"
    "print('up', flush=True)\n"
    "while True: s.accept()[0].close()\n"
)
CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)"


def test_refused_with_the_reason_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert netns.available() == "needs root (network namespaces: `ip netns add`)"


def test_refused_without_the_ip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.shutil, "which", lambda _name: None)
    assert netns.available() == "no `ip` command (iproute2) on PATH"


def test_refused_with_what_ip_said_when_the_probe_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a container without CAP_NET_ADMIN: root, `ip`, and no namespaces."""
    ran: list[tuple[str, ...]] = []

    def ip(*args: str) -> None:
        ran.append(args)
        if args[:2] == ("netns", "add"):
            raise netns.NetnsError(f"ip {' '.join(args)} failed: Operation not permitted")

    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns.shutil, "which", lambda _name: "/usr/sbin/ip")
    monkeypatch.setattr(netns, "ip", ip)
    reason = netns.available()
    assert reason is not None and reason.endswith("failed: Operation not permitted")
    assert ran[-1][:2] == ("netns", "del")  # the probe is cleaned up whatever happened


@pytest.mark.skipif(shutil.which("ip") is None, reason="no `ip` command (iproute2)")
def test_a_failing_ip_command_says_what_it_ran() -> None:
    with pytest.raises(netns.NetnsError, match="ip link del mrv-no-such-link"):
        netns.ip("link", "del", "mrv-no-such-link")


@pytest.fixture
def network() -> Iterator[Network]:
    with Network(2) as net:
        yield net


def _links_and_namespaces(tag: str) -> str:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10)
    spaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    return "\n".join(
        line for line in (links.stdout + spaces.stdout).splitlines() if f"{tag}" in line
    )


def _reaches(net: Network, src: int | None, dst: int) -> bool:
    """Whether a TCP connection from store `src`'s namespace (None: the root
    namespace, where clients are) to store `dst` gets through."""
    prefix = [] if src is None else net.launcher(src)
    cmd = [*prefix, sys.executable, "-c", CONNECT, net.addr(dst), str(PORT)]
    return subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0


@needs_netns
def test_cut_drops_traffic_between_two_stores_both_ways(network: Network) -> None:
    servers = [
        subprocess.Popen(
            [*network.launcher(i), sys.executable, "-c", SERVE, network.addr(i), str(PORT)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    try:
        for s in servers:
            assert s.stdout is not None and s.stdout.readline() == "up\n"
        assert _reaches(network, 1, 2) and _reaches(network, 2, 1)
        network.cut(1, 2)
        assert not _reaches(network, 1, 2) and not _reaches(network, 2, 1)
        assert _reaches(network, None, 1) and _reaches(network, None, 2)
        network.heal()
        assert _reaches(network, 1, 2) and _reaches(network, 2, 1)
        network.isolate(2)
        assert not _reaches(network, 1, 2)
        network.heal()
        assert _reaches(network, 2, 1)
    finally:
        for s in servers:
            s.kill()
            s.wait(timeout=10)


@needs_netns
def test_everything_made_is_removed_on_close_and_on_errors() -> None:
    net = Network(3)
    with net:
        assert net.tag in _links_and_namespaces(net.tag)
        net.partition([[1], [2, 3]])
    assert _links_and_namespaces(net.tag) == ""
    with pytest.raises(KeyboardInterrupt), Network(2) as net:
        raise KeyboardInterrupt
    assert _links_and_namespaces(net.tag) == ""


@needs_netns
def test_names_carry_the_pid_and_subnets_differ_between_networks() -> None:
    with Network(1) as a, Network(1) as b:
        assert a.namespace(1).startswith(f"mrv{netns.os.getpid()}")
        assert b.namespace(1).startswith(f"mrv{netns.os.getpid()}")
        assert a.namespace(1) != b.namespace(1) and a.subnet != b.subnet


@needs_netns
def test_what_a_dead_run_left_is_removed_and_a_live_runs_is_not() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead, live = f"mrv{gone.pid}z", f"mrv{os.getpid()}y"
    made = [("netns", f"{dead}-1"), ("link", f"{dead}b"), ("netns", f"{live}-1")]
    try:
        netns.ip("netns", "add", f"{dead}-1")
        netns.ip("link", "add", f"{dead}b", "type", "bridge")
        netns.ip("netns", "add", f"{live}-1")
        assert sorted(netns.remove_stale()) == [f"{dead}-1", f"{dead}b"]
        spaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        assert dead not in spaces + links and f"{live}-1" in spaces
    finally:
        for kind, name in made:
            with contextlib.suppress(netns.NetnsError):
                netns.ip(kind, "del", name)
