"""Real store processes on 127.0.0.1 for tests: free ports, temp dirs,
bounded waits, and every process stopped by its pid, also on failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import zmq

from multiraft.bench.cluster import free_ports
from multiraft.client.connection import Curve
from multiraft.protocol import wire
from multiraft.security.keys import generate, load_key_pair, load_publics
from multiraft.transport import codec

T = TypeVar("T")
TICK = "0.05"
"""Seconds per Raft tick in tests: elections take 0.5-1 s instead of 1-2 s."""


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Poll `check` until it returns something truthy, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def raw_request(
    addr: str, op: str, args: dict, timeout: float = 2.0, curve: Curve | None = None
) -> wire.Reply | None:
    """One request over a fresh DEALER (CURVE with `curve`); None if no
    reply in time."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        secure(sock, curve)
    try:
        sock.connect(f"tcp://{addr}")
        sock.send(wire.encode_request(wire.Request(1, op, args)))
        if not sock.poll(int(timeout * 1000)):
            return None
        reply = codec.decode(sock.recv())
        assert isinstance(reply, wire.Reply)
        return reply
    finally:
        sock.close(0)


def secure(sock: zmq.Socket, curve: Curve) -> None:
    """Make `sock` a CurveZMQ client with `curve`'s keys (before connecting)."""
    sock.curve_serverkey = curve.server_key.encode()
    sock.curve_publickey = curve.key.public.encode()
    sock.curve_secretkey = curve.key.secret.encode()


class LocalCluster:
    """N stores started with `multiraft store start`, as a user would;
    `secure`: with keys (root/keys: one per store, an admin key), trusting
    the certificates in root/keys at their first start."""

    def __init__(
        self, root: Path, n: int, replicas: int = 3, *extra_args: str, secure: bool = False
    ) -> None:
        self.root = root
        self.ids = list(range(1, n + 1))
        ports = free_ports(n)
        self.addrs = {i: f"127.0.0.1:{p}" for i, p in zip(self.ids, ports, strict=True)}
        self.replicas = replicas
        self.extra_args = list(extra_args)
        self.keys_dir = root / "keys" if secure else None
        self.procs: dict[int, subprocess.Popen] = {}
        self.initial = dict(self.addrs)
        self.joined: dict[int, str] = {}
        """Stores started with --join: store id -> the member asked."""

    @property
    def spec(self) -> str:
        return ",".join(f"{i}={a}" for i, a in self.initial.items())

    def join(self, store_id: int, member: int) -> None:
        """Start a new store that joins the running cluster through `member`."""
        assert store_id not in self.addrs
        self.ids.append(store_id)
        self.addrs[store_id] = f"127.0.0.1:{free_ports(1)[0]}"
        self.joined[store_id] = self.addrs[member]
        self.start(store_id)

    def endpoints(self) -> list[str]:
        return [self.addrs[i] for i in self.ids]

    def make_key(self, name: str, role: str, store_id: int | None = None) -> Path:
        """A new key in root/keys (not trusted by running stores); its
        secret file."""
        assert self.keys_dir is not None
        addr = self.addrs.get(store_id) if store_id is not None else None
        return generate(name, self.keys_dir, role, store_id, addr)[1]

    def client_keys(self, name: str = "admin") -> dict[str, Any]:
        """Client(..., **this) for a key of root/keys (none in plain mode)."""
        if self.keys_dir is None:
            return {}
        return {"key": self.keys_dir / f"{name}.key_secret", "cluster_keys": self.keys_dir}

    def curve(self, store_id: int, name: str = "admin") -> Curve | None:
        """The keys of a raw socket to `store_id` as `name` (None in plain mode)."""
        if self.keys_dir is None:
            return None
        [cert] = [c for c in load_publics(self.keys_dir) if c.store_id == store_id]
        return Curve(load_key_pair(self.keys_dir / f"{name}.key_secret"), cert.public)

    def start(self, store_id: int) -> None:
        assert store_id not in self.procs or self.procs[store_id].poll() is not None
        keys: list[str] = []
        if self.keys_dir is not None:
            secret = self.keys_dir / f"store-{store_id}.key_secret"
            if not secret.exists():
                secret = self.make_key(f"store-{store_id}", "store", store_id)
            if not (self.keys_dir / "admin.key_secret").exists():
                self.make_key("admin", "admin")
            keys = ["--key", str(secret), "--trusted", str(self.keys_dir)]
        cmd = [
            sys.executable,
            "-m",
            "multiraft.cli.main",
            "store",
            "start",
            "--store-id",
            str(store_id),
            "--addr",
            self.addrs[store_id],
            "--data-dir",
            str(self.root / f"store-{store_id}"),
            *(
                ["--join", self.joined[store_id]]
                if store_id in self.joined
                else ["--initial-cluster", self.spec]
            ),
            "--replicas",
            str(self.replicas),
            "--tick-interval",
            TICK,
            "--log-level",
            "warning",
            *keys,
            *self.extra_args,
        ]
        log = open(self.root / f"store-{store_id}.log", "ab")  # noqa: SIM115
        self.procs[store_id] = subprocess.Popen(cmd, stdout=log, stderr=log)
        log.close()

    def start_all(self) -> None:
        for i in self.ids:
            self.start(i)
        self.wait_leader(1)

    def kill(self, store_id: int) -> None:
        """SIGKILL: the store gets no chance to clean up."""
        proc = self.procs[store_id]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def terminate(self, store_id: int) -> int:
        """SIGTERM, and the exit status once it is gone."""
        proc = self.procs[store_id]
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=10)

    def alive(self) -> list[int]:
        return [i for i, p in self.procs.items() if p.poll() is None]

    def leader_of(self, region_id: int, ask: list[int] | None = None) -> int | None:
        """The leader store of a region, as a live store that leads it reports."""
        for i in ask or self.alive():
            reply = raw_request(self.addrs[i], "regions", {}, 1.0, self.curve(i))
            if reply is None or not reply.ok:
                continue
            for desc, leader in reply.result["regions"]:
                if desc[0] == region_id and leader == i:
                    return i
        return None

    def wait_leader(self, region_id: int, timeout: float = 20.0) -> int:
        return wait_for(
            f"a leader of region {region_id}", lambda: self.leader_of(region_id), timeout
        )

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)

    def log_tail(self, n: int = 30) -> str:
        out = []
        for i in self.ids:
            path = self.root / f"store-{i}.log"
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-n:]
                out.append(f"--- store {i} ---\n" + "\n".join(lines))
        return "\n".join(out)
