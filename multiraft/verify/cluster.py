"""The cluster `verify` starts and breaks: bench's LocalCluster (store
processes started as `cluster up` starts them, each stopped by its pid on
the way out), on loopback or one store per network namespace, with what
the nemesis needs on top: pause and resume, and a record of what it broke
so that `heal()` puts everything back."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from ..bench.cluster import LocalCluster
from .netns import Network

TICK_INTERVAL = "0.05"
"""Seconds per Raft tick: elections in 0.5-1 s, so a run of a minute sees
many faults and recoveries."""

PORT = 20160
"""Store i listens on PORT + i in its own namespace (ports are per namespace)."""


class VerifyCluster(LocalCluster):
    """`stores` stores with 3 replicas; in `network`'s namespaces if given.
    `logs`: where the stores' logs are copied when it stops."""

    def __init__(self, stores: int, logs: Path, network: Network | None = None) -> None:
        addrs = None
        if network is not None:
            addrs = {i: f"{network.addr(i)}:{PORT + i}" for i in range(1, stores + 1)}
        super().__init__(
            stores,
            extra_args=("--tick-interval", TICK_INTERVAL),
            addrs=addrs,
            prefix="multiraft-verify-",
        )
        self.network = network
        self.logs = logs
        self.killed: set[int] = set()
        self.paused: set[int] = set()

    @property
    def ids(self) -> list[int]:
        return sorted(self.addrs)

    def launcher(self, sid: int) -> list[str]:
        return [] if self.network is None else self.network.launcher(sid)

    def kill(self, sid: int) -> None:
        super().kill(sid)
        self.killed.add(sid)
        self.paused.discard(sid)

    def restart(self, sid: int) -> None:
        super().restart(sid)
        self.killed.discard(sid)

    def pause(self, sid: int) -> None:
        """SIGSTOP: the store freezes mid-turn, its sockets stay open."""
        self.procs[sid].send_signal(signal.SIGSTOP)
        self.paused.add(sid)

    def resume(self, sid: int) -> None:
        self.procs[sid].send_signal(signal.SIGCONT)
        self.paused.discard(sid)

    def heal(self) -> None:
        """Every store running and every link up again."""
        for sid in sorted(self.paused):
            self.resume(sid)
        for sid in sorted(self.killed):
            self.restart(sid)
        if self.network is not None:
            self.network.heal()

    def stop(self) -> None:
        """Stop every store, keeping their logs in `logs`."""
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            for log in self.root.glob("store-*.log"):
                shutil.copy(log, self.logs / log.name)
        finally:
            super().stop()
