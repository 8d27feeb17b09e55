"""The Raft core's randomized schedules once more, over PeerStorage on LMDB.

Every node keeps its log, HardState and snapshot in its own LMDB
environment; a crash closes the environment and the restart reopens it, so
the node comes back with exactly what was committed to disk. The same
per-step safety checks and the final liveness check apply.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import msgpack
import pytest

import tests.raft.test_randomized as randomized
from multiraft.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from multiraft.storage import Engine, PeerStorage, RegionState, keys
from tests.raft.network import Network

REGION = 7
SNAPSHOT_KEY = keys.region_prefix(REGION) + b"\x7f"
"""Where this test keeps the harness's snapshot (its state machine bytes)."""


class LmdbRaftStorage:
    """The write API of MemoryStorage that the harness uses, on PeerStorage.

    Each write is one committed batch; fsync is off because crashes here are
    simulated by closing and reopening the environment, not by power loss.
    """

    def __init__(self, path: Path, conf_state: ConfState) -> None:
        self.path = path
        self.engine = Engine(path, sync=False)
        self.ps = PeerStorage(self.engine, REGION)
        batch = self.engine.batch()
        self.ps.set_region(batch, RegionState(b"", b"", b"", conf_state))
        batch.commit()

    def reopen(self) -> None:
        """A crash: drop every in-memory cache, read everything back from disk."""
        self.engine.close()
        self.engine = Engine(self.path, sync=False)
        self.ps = PeerStorage(self.engine, REGION)

    def close(self) -> None:
        self.engine.close()

    # -- Storage protocol -------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.ps.initial_state()

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        return self.ps.entries(lo, hi, max_size)

    def term(self, i: int) -> int:
        return self.ps.term(i)

    def first_index(self) -> int:
        return self.ps.first_index()

    def last_index(self) -> int:
        return self.ps.last_index()

    def snapshot(self) -> Snapshot:
        value = self.engine.get(SNAPSHOT_KEY)
        if value is None:
            cs = self.ps.region.conf_state
            return Snapshot(b"", SnapshotMetadata(cs, 0, 0))
        data, cs, index, term = msgpack.unpackb(value)
        return Snapshot(data, SnapshotMetadata(ConfState.from_wire(cs), index, term))

    @property
    def hard_state(self) -> HardState:
        return self.ps.hard_state

    # -- the harness's writes ---------------------------------------------------

    def _commit(self, write: Any) -> None:
        batch = self.engine.batch()
        write(batch)
        batch.commit()

    def append(self, entries: list[Entry]) -> None:
        self._commit(lambda b: self.ps.append(b, entries))

    def set_hard_state(self, hs: HardState) -> None:
        self._commit(lambda b: self.ps.set_hard_state(b, hs))

    def apply_snapshot(self, snap: Snapshot) -> None:
        def write(batch: Any) -> None:
            region = RegionState(b"", b"", b"", snap.metadata.conf_state)
            self.ps.apply_snapshot(batch, snap, region)
            self._put_snapshot(batch, snap)

        self._commit(write)

    def create_snapshot(self, i: int, conf_state: ConfState | None, data: bytes) -> Snapshot:
        cs = conf_state if conf_state is not None else self.ps.region.conf_state
        snap = Snapshot(data, SnapshotMetadata(cs, i, self.ps.term(i)))

        def write(batch: Any) -> None:
            self.ps.set_applied(batch, i)
            self._put_snapshot(batch, snap)

        self._commit(write)
        return snap

    def compact(self, index: int) -> None:
        self._commit(lambda b: self.ps.compact(b, index))

    @staticmethod
    def _put_snapshot(batch: Any, snap: Snapshot) -> None:
        meta = snap.metadata
        value = msgpack.packb([snap.data, meta.conf_state.to_wire(), meta.index, meta.term])
        batch.put(SNAPSHOT_KEY, value)


class LmdbNetwork(Network):
    """The simulated network, every node on its own LMDB environment."""

    dirs = itertools.count()
    root: Path
    opened: list[LmdbRaftStorage]

    def __init__(self, voters: Any = (1, 2, 3), **kwargs: Any) -> None:
        voters = list(voters)
        cs = ConfState(tuple(voters))
        storages = {}
        for i in voters:
            storage = LmdbRaftStorage(self.root / f"{next(self.dirs)}", cs)
            self.opened.append(storage)
            storages[i] = storage
        super().__init__(voters, storages=storages, **kwargs)

    def restart(self, node_id: int) -> None:
        self.nodes[node_id].storage.reopen()
        super().restart(node_id)


SCHEDULES = [(3, seed) for seed in range(900_000, 900_150)] + [
    (5, seed) for seed in range(950_000, 950_100)
]


@pytest.mark.parametrize(("size", "seed"), SCHEDULES, ids=[f"n{s}-{x}" for s, x in SCHEDULES])
def test_random_schedules_over_lmdb(
    size: int, seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[LmdbRaftStorage] = []
    network = type("Net", (LmdbNetwork,), {"root": tmp_path, "opened": opened})
    monkeypatch.setattr(randomized, "Network", network)
    try:
        randomized.run_schedule(seed, size)
    finally:
        for storage in opened:
            storage.close()
