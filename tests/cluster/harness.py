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
from typing import TypeVar

import zmq

from multiraft.bench.cluster import free_ports
from multiraft.protocol import wire
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


def raw_request(addr: str, op: str, args: dict, timeout: float = 2.0) -> wire.Reply | None:
    """One request over a fresh DEALER; None if no reply in time."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
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


class LocalCluster:
    """N stores started with `multiraft store start`, as a user would."""

    def __init__(self, root: Path, n: int, replicas: int = 3, *extra_args: str) -> None:
        self.root = root
        self.ids = list(range(1, n + 1))
        ports = free_ports(n)
        self.addrs = {i: f"127.0.0.1:{p}" for i, p in zip(self.ids, ports, strict=True)}
        self.replicas = replicas
        self.extra_args = list(extra_args)
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

    def start(self, store_id: int) -> None:
        assert store_id not in self.procs or self.procs[store_id].poll() is not None
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
            reply = raw_request(self.addrs[i], "regions", {}, timeout=1.0)
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
