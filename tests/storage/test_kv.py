from __future__ import annotations

from pathlib import Path

import pytest

from multiraft.raft.errors import SnapshotOutOfDate
from multiraft.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from multiraft.storage import Engine, PeerStorage, RegionState, keys, kv

CS = ConfState((1, 2, 3))


def put_all(engine: Engine, pairs: dict[bytes, bytes]) -> None:
    batch = engine.batch()
    for k, v in pairs.items():
        kv.put(batch, k, v)
    batch.commit()


def test_get_put_delete(engine: Engine) -> None:
    put_all(engine, {b"a": b"1", b"b": b"2"})
    batch = engine.batch()
    kv.delete(batch, b"a")
    kv.put(batch, b"c", b"3")
    assert kv.get(engine, b"a") == b"1"
    batch.commit()
    assert (kv.get(engine, b"a"), kv.get(engine, b"b"), kv.get(engine, b"c")) == (None, b"2", b"3")


def test_scan_is_start_inclusive_end_exclusive_and_unbounded_on_empty_end(engine: Engine) -> None:
    put_all(engine, {b"": b"0", b"a": b"1", b"b": b"2", b"b\x00": b"3", b"c": b"4", b"\xff": b"5"})
    assert kv.scan(engine, b"a", b"c") == [(b"a", b"1"), (b"b", b"2"), (b"b\x00", b"3")]
    assert [k for k, _ in kv.scan(engine, b"", b"")] == [b"", b"a", b"b", b"b\x00", b"c", b"\xff"]
    assert [k for k, _ in kv.scan(engine, b"c", b"")] == [b"c", b"\xff"]
    assert kv.scan(engine, b"a", b"", limit=2) == [(b"a", b"1"), (b"b", b"2")]
    assert kv.scan(engine, b"a", b"", limit=0) == []
    assert kv.scan(engine, b"d", b"e") == []
    assert kv.scan(engine, b"\xff\x00", b"") == []


def test_scan_never_returns_local_keys(engine: Engine) -> None:
    ps = PeerStorage(engine, 1)
    batch = engine.batch()
    ps.append(batch, [Entry(1, 1)])
    ps.set_hard_state(batch, HardState(1, 0, 1))
    kv.put(batch, b"k", b"v")
    batch.commit()
    assert kv.scan(engine, b"", b"") == [(b"k", b"v")]


def test_delete_range_clears_only_the_range(engine: Engine) -> None:
    put_all(engine, {b"a": b"1", b"b": b"2", b"c": b"3", b"d": b"4"})
    batch = engine.batch()
    kv.delete_range(batch, b"b", b"d")
    batch.commit()
    assert [k for k, _ in kv.scan(engine, b"", b"")] == [b"a", b"d"]
    kv.delete_range(batch, b"b", b"")
    batch.commit()
    assert [k for k, _ in kv.scan(engine, b"", b"")] == [b"a"]


def region(engine: Engine, region_id: int, start: bytes, end: bytes) -> PeerStorage:
    """A region with 5 entries, 4 of them applied with data, compacted to 2."""
    ps = PeerStorage(engine, region_id)
    batch = engine.batch()
    ps.set_region(batch, RegionState(b"desc%d" % region_id, start, end, CS))
    ps.append(batch, [Entry(1 + i // 3, i, data=b"e%d" % i) for i in range(1, 6)])
    ps.set_hard_state(batch, HardState(2, 1, 5))
    for k in (start + b"1", start + b"2"):
        kv.put(batch, k, b"v" + k)
    ps.set_applied(batch, 4)
    ps.compact(batch, 2)
    batch.commit()
    return ps


def test_snapshot_is_the_region_range_at_applied(engine: Engine) -> None:
    ps = region(engine, 1, b"b", b"c")
    put_all(engine, {b"a": b"out", b"c": b"out", b"bz": b"in"})
    snap = kv.generate_snapshot(engine, 1)
    assert snap.metadata == SnapshotMetadata(CS, 4, 2)
    assert snap == ps.snapshot()
    fresh = Path(engine.path).with_name("other")
    with Engine(fresh) as other:
        target = PeerStorage(other, 1)
        batch = other.batch()
        kv.ingest_snapshot(batch, target, snap)
        batch.commit()
        assert kv.scan(other, b"", b"") == [(b"b1", b"vb1"), (b"b2", b"vb2"), (b"bz", b"in")]
        assert target.region == RegionState(b"desc1", b"b", b"c", CS)


def test_ingest_replaces_range_state_and_log_at_once(engine: Engine) -> None:
    source = region(engine, 1, b"m", b"")
    snap = source.snapshot()
    target = region(engine, 2, b"a", b"m")
    batch = engine.batch()
    target.append(batch, [Entry(2, 6), Entry(2, 7)])
    kv.put(batch, b"m1", b"stale")
    kv.put(batch, b"zz", b"stale")
    batch.commit()
    target2 = PeerStorage(engine, 3)
    batch = engine.batch()
    kv.ingest_snapshot(batch, target2, snap)
    assert kv.get(engine, b"zz") == b"stale"
    batch.commit()
    assert kv.scan(engine, b"m", b"") == [(b"m1", b"vm1"), (b"m2", b"vm2")]
    assert kv.scan(engine, b"a", b"m") == [(b"a1", b"va1"), (b"a2", b"va2")]
    assert (target2.first_index(), target2.last_index(), target2.term(4)) == (5, 4, 2)
    assert target2.apply_state.applied_index == 4
    assert target2.initial_state()[1] == CS


def test_ingest_clears_the_old_log(engine: Engine) -> None:
    ps = region(engine, 1, b"", b"")
    snap = Snapshot(ps.snapshot().data, SnapshotMetadata(CS, 9, 3))
    batch = engine.batch()
    kv.ingest_snapshot(batch, ps, snap)
    batch.commit()
    with engine.read() as txn:
        log = [
            k for k, _ in txn.cursor() if k.startswith(b"\x01" + (1).to_bytes(8, "big") + b"\x01")
        ]
    assert log == []
    assert (ps.first_index(), ps.last_index(), ps.term(9)) == (10, 9, 3)
    assert PeerStorage(engine, 1).last_index() == 9


def test_out_of_date_snapshot_changes_nothing(engine: Engine) -> None:
    ps = region(engine, 1, b"", b"")
    old = Snapshot(ps.snapshot().data, SnapshotMetadata(CS, 2, 1))
    batch = engine.batch()
    with pytest.raises(SnapshotOutOfDate):
        kv.ingest_snapshot(batch, ps, old)
    batch.commit()
    assert (ps.first_index(), ps.last_index()) == (3, 5)
    assert kv.scan(engine, b"", b"") == [(b"1", b"v1"), (b"2", b"v2")]


def test_applied_index_and_data_commit_together(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with Engine(path) as engine:
        ps = PeerStorage(engine, 1)
        batch = engine.batch()
        ps.append(batch, [Entry(1, 1, data=b"put k v")])
        batch.commit()
        batch = engine.batch()
        kv.put(batch, b"k", b"v")
        ps.set_applied(batch, 1)
        assert (kv.get(engine, b"k"), ps.apply_state.applied_index) == (None, 0)
        batch.commit()
    with Engine(path) as engine:
        assert (kv.get(engine, b"k"), PeerStorage(engine, 1).apply_state.applied_index) == (b"v", 1)


def _sessions(engine: Engine, region_id: int) -> dict[bytes, bytes]:
    prefix = keys.session_prefix(region_id)
    with engine.read() as txn:
        cur = txn.cursor()
        out = {}
        if cur.set_range(prefix):
            for k, v in cur:
                if not k.startswith(prefix):
                    break
                out[k[len(prefix) :]] = v
    return out


def test_snapshot_carries_the_regions_sessions_and_replaces_the_old_ones(engine: Engine) -> None:
    ps = region(engine, 1, b"b", b"c")
    batch = engine.batch()
    for client in (7, 9):
        batch.put(keys.session_prefix(1) + keys.pack_u64(client), b"session%d" % client)
    batch.put(keys.session_prefix(2) + keys.pack_u64(7), b"other region")
    batch.commit()
    snap = ps.snapshot()
    fresh = Path(engine.path).with_name("other")
    with Engine(fresh) as other:
        stale = other.batch()
        stale.put(keys.session_prefix(1) + keys.pack_u64(3), b"stale")
        stale.commit()
        batch = other.batch()
        kv.ingest_snapshot(batch, PeerStorage(other, 1), snap)
        batch.commit()
        assert _sessions(other, 1) == {
            keys.pack_u64(7): b"session7",
            keys.pack_u64(9): b"session9",
        }
        assert _sessions(other, 2) == {}
