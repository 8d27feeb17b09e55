from __future__ import annotations

import copy
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from multiraft.raft.errors import Compacted, SnapshotOutOfDate, StorageError, Unavailable
from multiraft.raft.storage import MemoryStorage
from multiraft.raft.types import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    Snapshot,
    SnapshotMetadata,
)
from multiraft.storage import Engine, PeerStorage, RegionState, StorageFull

BIG = 1 << 30


def ents(term: int, lo: int, hi: int) -> list[Entry]:
    return [Entry(term, i, data=b"d%d" % i) for i in range(lo, hi)]


def outcome(f: Callable[..., Any], *args: Any) -> Any:
    """f's value, or the type of the storage error it raised."""
    try:
        return f(*args)
    except (Compacted, Unavailable, SnapshotOutOfDate) as e:
        return type(e)


def assert_same(ps: PeerStorage, ms: MemoryStorage, rng: random.Random) -> None:
    """Every read of `ps` answers exactly as `ms` does."""
    assert ps.first_index() == ms.first_index()
    assert ps.last_index() == ms.last_index()
    assert ps.initial_state() == ms.initial_state()
    first, last = ms.first_index(), ms.last_index()
    for i in range(max(first - 2, 0), last + 2):
        assert outcome(ps.term, i) == outcome(ms.term, i), i
    for _ in range(6):
        lo = rng.randint(max(first - 2, 0), last + 2)
        hi = rng.randint(lo, last + 3)
        size = rng.choice([0, 20, 50, BIG])
        assert outcome(ps.entries, lo, hi, size) == outcome(ms.entries, lo, hi, size)


class Harness:
    """Drives a PeerStorage and a MemoryStorage with the same writes; the
    PeerStorage must match the MemoryStorage as of the last commit."""

    def __init__(self, path: Path, rng: random.Random, cache_entries: int) -> None:
        self.path, self.rng, self.cache_entries = path, rng, cache_entries
        self.engine = Engine(path, map_size=1 << 20)
        self.ps = PeerStorage(self.engine, 7, cache_entries=cache_entries)
        self.batch = self.engine.batch()
        self.committed = MemoryStorage()
        self.model = MemoryStorage()

    def both(self, write: Callable[..., Any], mem_write: Callable[..., Any], *args: Any) -> None:
        assert outcome(write, self.batch, *args) == outcome(mem_write, *args)

    def append(self) -> None:
        rng, m = self.rng, self.model
        lo = rng.randint(max(m.first_index() - 3, 1), m.last_index() + 2)
        self.both(self.ps.append, m.append, ents(rng.randint(1, 9), lo, lo + rng.randint(0, 6)))

    def hard_state(self) -> None:
        hs = HardState(self.rng.randint(0, 9), self.rng.randint(0, 3), self.rng.randint(0, 30))
        self.both(self.ps.set_hard_state, self.model.set_hard_state, hs)

    def compact(self) -> None:
        m = self.model
        i = self.rng.randint(max(m.first_index() - 2, 0), m.last_index() + 1)
        self.ps.set_applied(self.batch, m.last_index())
        self.both(self.ps.compact, m.compact, i)

    def snapshot(self) -> None:
        m = self.model
        i = self.rng.randint(max(m.first_index() - 2, 0), m.last_index() + 3)
        if m.snapshot().metadata.index < i < m.first_index():
            return  # MemoryStorage compares with its last snapshot, we with the log
        cs = ConfState((1, self.rng.randint(2, 5)), (9,))
        snap = Snapshot(metadata=SnapshotMetadata(cs, i, self.rng.randint(1, 9)))
        self.both(self.ps.apply_snapshot, m.apply_snapshot, snap)

    def commit(self) -> None:
        self.batch.commit()
        self.committed = copy.deepcopy(self.model)

    def drop(self) -> None:
        self.batch = self.engine.batch()
        self.model = copy.deepcopy(self.committed)

    def reopen(self) -> None:
        self.drop()
        self.engine.close()
        self.engine = Engine(self.path)
        self.ps = PeerStorage(self.engine, 7, cache_entries=self.cache_entries)
        self.batch = self.engine.batch()

    def step(self) -> None:
        ops = [self.append] * 6 + [self.hard_state, self.compact, self.snapshot]
        ops += [self.commit] * 4 + [self.drop, self.reopen]
        self.rng.choice(ops)()
        assert_same(self.ps, self.committed, self.rng)


@pytest.mark.parametrize("cache_entries", [0, 3, 256])
@pytest.mark.parametrize("seed", range(8))
def test_behaves_exactly_like_memory_storage(tmp_path: Path, seed: int, cache_entries: int) -> None:
    h = Harness(tmp_path / "s", random.Random(seed), cache_entries)
    try:
        for _ in range(250):
            h.step()
    finally:
        h.engine.close()


def test_empty_region_is_an_empty_log(engine: Engine) -> None:
    ps, ms = PeerStorage(engine, 1), MemoryStorage()
    assert_same(ps, ms, random.Random(0))
    assert ps.apply_state.applied_index == 0
    assert ps.region == RegionState()


def test_reads_see_only_committed_writes(engine: Engine) -> None:
    ps = PeerStorage(engine, 1)
    batch = engine.batch()
    ps.append(batch, ents(1, 1, 6))
    ps.set_hard_state(batch, HardState(1, 1, 5))
    assert ps.last_index() == 0 and ps.hard_state == HardState()
    batch.commit()
    batch = engine.batch()
    ps.append(batch, ents(2, 3, 4))
    assert ps.last_index() == 5 and ps.term(5) == 1
    batch.commit()
    assert ps.last_index() == 3
    assert ps.entries(1, 4, BIG) == ents(1, 1, 3) + ents(2, 3, 4)
    with pytest.raises(Unavailable):
        ps.term(4)


def test_failed_commit_leaves_the_cache_as_on_disk(engine: Engine) -> None:
    ps = PeerStorage(engine, 1)
    batch = engine.batch()
    ps.append(batch, ents(1, 1, 4))
    batch.commit()

    def disk_full(ops: object) -> None:
        raise StorageFull("disk full")

    real = engine._write_once
    engine._write_once = disk_full  # type: ignore[method-assign]
    batch = engine.batch()
    ps.append(batch, ents(2, 2, 10))
    with pytest.raises(StorageFull):
        batch.commit()
    assert (ps.last_index(), ps.term(3)) == (3, 1)
    engine._write_once = real  # type: ignore[method-assign]
    batch.commit()
    assert (ps.last_index(), ps.term(3)) == (9, 2)


def test_appends_within_one_batch_truncate_each_other(engine: Engine) -> None:
    ps = PeerStorage(engine, 1, cache_entries=2)
    batch = engine.batch()
    ps.append(batch, ents(1, 1, 11))
    ps.append(batch, ents(2, 5, 7))
    ps.append(batch, ents(3, 7, 8))
    batch.commit()
    expected = ents(1, 1, 5) + ents(2, 5, 7) + ents(3, 7, 8)
    assert ps.entries(1, 8, BIG) == expected
    assert PeerStorage(engine, 1).entries(1, 8, BIG) == expected
    with engine.read() as txn:
        assert txn.get(b"\x01" + (1).to_bytes(8, "big") + b"\x01" + (8).to_bytes(8, "big")) is None


def test_compaction_refuses_unapplied_entries(engine: Engine) -> None:
    ps = PeerStorage(engine, 1)
    batch = engine.batch()
    ps.append(batch, ents(1, 1, 6))
    ps.set_applied(batch, 3)
    with pytest.raises(ValueError, match="beyond applied"):
        ps.compact(batch, 4)
    ps.compact(batch, 3)
    batch.commit()
    assert (ps.first_index(), ps.term(3), ps.apply_state.truncated_index) == (4, 1, 3)


def test_regions_do_not_see_each_other(engine: Engine) -> None:
    a, b = PeerStorage(engine, 1), PeerStorage(engine, 2)
    batch = engine.batch()
    a.append(batch, ents(1, 1, 4))
    b.append(batch, ents(2, 1, 9))
    b.set_hard_state(batch, HardState(2, 2, 8))
    batch.commit()
    b2 = PeerStorage(engine, 2, cache_entries=0)
    assert (PeerStorage(engine, 1).last_index(), b2.last_index()) == (3, 8)
    assert b2.entries(1, 9, BIG) == ents(2, 1, 9)
    assert a.initial_state()[0] == HardState() and b2.hard_state == HardState(2, 2, 8)


def test_a_hole_on_disk_is_reported_not_papered_over(engine: Engine) -> None:
    ps = PeerStorage(engine, 1, cache_entries=0)
    batch = engine.batch()
    ps.append(batch, ents(1, 1, 6))
    batch.commit()
    batch.delete(b"\x01" + (1).to_bytes(8, "big") + b"\x01" + (3).to_bytes(8, "big"))
    batch.commit()
    with pytest.raises(StorageError, match="hole"):
        ps.entries(1, 6, BIG)


def test_raft_state_round_trips_across_reopen(tmp_path: Path) -> None:
    """What a RawNode restarted over this storage would read back."""
    path = tmp_path / "s"
    cs = ConfState((1, 2, 3), (4,))
    conf = Entry(3, 12, EntryType.CONF_CHANGE, b"\x93\x00\x04\xc4\x00")
    with Engine(path) as engine:
        ps = PeerStorage(engine, 5)
        batch = engine.batch()
        ps.set_region(batch, RegionState(b"desc", b"a", b"m", ConfState((1,))))
        ps.apply_snapshot(batch, Snapshot(metadata=SnapshotMetadata(ConfState((1, 2)), 10, 2)))
        ps.append(batch, [Entry(2, 11, data=b"x"), conf, Entry(3, 13, data=b"y" * 100)])
        ps.set_hard_state(batch, HardState(3, 2, 13))
        ps.set_applied(batch, 12)
        ps.set_region(batch, RegionState(b"desc", b"a", b"m", cs))
        batch.commit()
        snap = ps.snapshot()
    with Engine(path) as engine:
        ps = PeerStorage(engine, 5)
        assert ps.initial_state() == (HardState(3, 2, 13), cs)
        assert (ps.first_index(), ps.last_index(), ps.term(10)) == (11, 13, 2)
        assert ps.entries(11, 14, BIG) == [
            Entry(2, 11, data=b"x"),
            conf,
            Entry(3, 13, data=b"y" * 100),
        ]
        assert ps.entries(11, 14, 0) == [Entry(2, 11, data=b"x")]
        assert ps.region == RegionState(b"desc", b"a", b"m", cs)
        assert ps.snapshot() == snap
        assert snap.metadata == SnapshotMetadata(cs, 12, 3)


def test_a_batch_left_behind_cannot_commit(engine: Engine) -> None:
    ps = PeerStorage(engine, 1)
    old = engine.batch()
    ps.append(old, ents(1, 1, 3))
    new = engine.batch()
    ps.append(new, ents(2, 1, 2))
    new.commit()
    with pytest.raises(StorageError, match="abandoned"):
        old.commit()
    assert PeerStorage(engine, 1).entries(1, 2, BIG) == ps.entries(1, 2, BIG) == ents(2, 1, 2)
