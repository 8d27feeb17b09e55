"""A throwaway local cluster for `multiraft bench` and `multiraft verify`:
store processes (3 by default) on free loopback ports in a temp dir, started
as `cluster up` starts them, each stopped by its pid on the way out (also on
Ctrl-C and errors)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from multiraft.client.keys import KeyArgs

from ..client import Client
from ..errors import MultiraftError
from ..security.keys import make_cluster_keys

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_ports(n: int) -> list[int]:
    """n ports free right now on 127.0.0.1 (bound together so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class LocalCluster:
    """N stores with fsync on and `replicas` replicas, in a private temp dir."""

    def __init__(
        self,
        stores: int = 3,
        replicas: int = 3,
        extra_args: tuple[str, ...] = (),
        secure: bool = False,
        addrs: dict[int, str] | None = None,
        prefix: str = "multiraft-bench-",
    ) -> None:
        """`addrs`: store id -> HOST:PORT (default: `stores` free loopback
        ports); `prefix`: of the temp dir's name."""
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        if addrs is None:
            addrs = {i + 1: f"127.0.0.1:{p}" for i, p in enumerate(free_ports(stores))}
        self.addrs = addrs
        self.replicas = replicas
        self.extra_args = extra_args
        self.keys_dir = make_cluster_keys(self.root / "keys", self.addrs) if secure else None
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def endpoints(self) -> list[str]:
        return list(self.addrs.values())

    @property
    def client_keys(self) -> KeyArgs:
        """Client(..., **this): the admin key of a secure cluster, else nothing."""
        if self.keys_dir is None:
            return {}
        return {"key": str(self.keys_dir / "admin.key_secret"), "cluster_keys": str(self.keys_dir)}

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        spec = ",".join(f"{i}={a}" for i, a in self.addrs.items())
        for sid, addr in self.addrs.items():
            self.procs[sid] = self._spawn(sid, addr, spec)
        self.wait_ready()

    def _spawn(self, sid: int, addr: str, spec: str) -> subprocess.Popen[bytes]:
        cmd = [
            *self.launcher(sid),
            sys.executable, "-m", "multiraft.cli.main", "store", "start",
            "--store-id", str(sid), "--addr", addr,
            "--data-dir", str(self.root / f"store-{sid}"),
            "--initial-cluster", spec, "--replicas", str(self.replicas),
            "--log-level", "warning", *self.extra_args,
        ]  # fmt: skip
        if self.keys_dir is not None:
            secret = self.keys_dir / f"store-{sid}.key_secret"
            cmd += ["--key", str(secret), "--trusted", str(self.keys_dir)]
        with open(self.root / f"store-{sid}.log", "ab") as log:
            # Its own session: a Ctrl-C in the terminal reaches only the
            # bench, which then stops the stores itself, in order.
            return subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)

    def launcher(self, sid: int) -> list[str]:
        """What the store's command runs under (none here; verify runs
        each store in its network namespace)."""
        return []

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until the first region has a leader that answers."""
        deadline = time.monotonic() + timeout
        with Client(self.endpoints, timeout=2.0, **self.client_keys) as c:
            while True:
                dead = [sid for sid, p in self.procs.items() if p.poll() is not None]
                if dead:
                    raise RuntimeError(f"stores {dead} exited:\n{self.log_tail()}")
                with contextlib.suppress(MultiraftError):
                    if any(leader is not None for _, leader in c.regions()):
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cluster not ready in {timeout} s:\n{self.log_tail()}")
                time.sleep(0.1)

    def kill(self, sid: int) -> None:
        """SIGKILL one store (it keeps its data dir)."""
        self.procs[sid].kill()
        self.procs[sid].wait(timeout=STOP_TIMEOUT)

    def restart(self, sid: int) -> None:
        """Start a killed store again from its data dir."""
        spec = ",".join(f"{i}={a}" for i, a in self.addrs.items())
        self.procs[sid] = self._spawn(sid, self.addrs[sid], spec)

    def pids(self) -> dict[int, int]:
        return {sid: p.pid for sid, p in self.procs.items()}

    def stop(self) -> None:
        """SIGTERM every store, SIGKILL what outlives STOP_TIMEOUT, then
        remove the temp dir. A stopped (SIGSTOP) store is continued too, so
        it acts on the SIGTERM."""
        for p in self.procs.values():
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)
                    os.kill(p.pid, signal.SIGCONT)
        deadline = time.monotonic() + STOP_TIMEOUT
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=STOP_TIMEOUT)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, n: int = 20) -> str:
        out = []
        for sid in self.addrs:
            path = self.root / f"store-{sid}.log"
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-n:]
                out.append(f"--- store {sid} ---\n" + "\n".join(lines))
        return "\n".join(out)
