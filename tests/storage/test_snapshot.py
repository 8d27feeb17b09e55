from __future__ import annotations

import pytest

from multiraft.raft.types import ConfState, Entry, HardState, SnapshotMetadata
from multiraft.storage import Engine, PeerStorage, RegionState, StorageError, keys, kv
from multiraft.storage.snapshot import FORMAT, SnapshotHeader, SnapshotSource
from multiraft.storage.states import pack

CS = ConfState((1, 2, 3))


def region(engine: Engine, region_id: int, start: bytes, end: bytes, n: int = 2) -> PeerStorage:
    """A region with 5 entries, 4 applied, compacted to 2; n keys of data."""
    ps = PeerStorage(engine, region_id)
    batch = engine.batch()
    ps.set_region(batch, RegionState(b"desc%d" % region_id, start, end, CS))
    ps.append(batch, [Entry(1 + i // 3, i, data=b"e%d" % i) for i in range(1, 6)])
    ps.set_hard_state(batch, HardState(2, 1, 5))
    for i in range(n):
        kv.put(batch, start + b"%06d" % i, b"v%d" % i)
    batch.put(keys.session_prefix(region_id) + keys.pack_u64(7), b"session7")
    ps.set_applied(batch, 4)
    ps.compact(batch, 2)
    batch.commit()
    return ps


def drain(source: SnapshotSource, max_bytes: int) -> list[list[bytes]]:
    chunks = []
    done = False
    while not done:
        flat, done = source.next_chunk(max_bytes)
        chunks.append(flat)
    return chunks


def test_header_is_the_region_and_its_sessions_and_the_data_streams_apart(engine: Engine) -> None:
    ps = region(engine, 1, b"b", b"c")
    kv_outside = engine.batch()
    kv.put(kv_outside, b"a", b"out")
    kv.put(kv_outside, b"c", b"out")
    kv_outside.commit()
    snap = ps.snapshot()
    assert snap.metadata == SnapshotMetadata(CS, 4, 2)
    header = SnapshotHeader.decode(snap.data)
    assert header == SnapshotHeader(b"desc1", b"b", b"c", [keys.pack_u64(7), b"session7"])
    source = engine.snapshot_sources.claim(1, 4, 2)
    assert source is not None and len(engine.snapshot_sources) == 0
    assert drain(source, 1 << 20) == [[b"b000000", b"v0", b"b000001", b"v1"]]
    source.close()
    assert source.closed


def test_chunks_respect_the_cap_and_cover_the_range_once(engine: Engine) -> None:
    region(engine, 1, b"k", b"l", n=100)
    PeerStorage(engine, 1).snapshot()
    source = engine.snapshot_sources.claim(1, 4, 2)
    assert source is not None
    chunks = drain(source, 50)
    # A chunk ends with the pair that reaches the cap (a data key is z + key).
    assert all(sum(map(len, c[:-2])) + len(c) // 2 - 1 < 50 for c in chunks)
    assert len(chunks) > 10
    flat = [b for c in chunks for b in c]
    assert flat[0::2] == [b"k%06d" % i for i in range(100)]
    with pytest.raises(StorageError, match="closed"):
        source.close()
        source.next_chunk(10)


def test_an_empty_region_is_one_empty_done_chunk(engine: Engine) -> None:
    region(engine, 1, b"x", b"y", n=0)
    PeerStorage(engine, 1).snapshot()
    source = engine.snapshot_sources.claim(1, 4, 2)
    assert source is not None and source.next_chunk(10) == ([], True)


def test_source_stays_at_the_applied_index_while_writes_commit(engine: Engine) -> None:
    """Writes, deletes and a newer applied index that commit while the data
    streams do not show: the snapshot is one committed state."""
    ps = region(engine, 1, b"", b"", n=50)
    snap = ps.snapshot()
    source = engine.snapshot_sources.claim(1, snap.metadata.index, snap.metadata.term)
    assert source is not None
    first, done = source.next_chunk(100)
    assert not done
    batch = engine.batch()
    for i in range(50):
        kv.delete(batch, b"%06d" % i)
    kv.put(batch, b"000010x", b"new")
    ps.append(batch, [Entry(2, 6)])
    ps.set_applied(batch, 5)
    batch.commit()
    rest = [b for c in drain(source, 100) for b in c]
    assert (first + rest)[0::2] == [b"%06d" % i for i in range(50)]
    assert PeerStorage(engine, 1).snapshot().metadata.index == 5


def test_a_map_resize_fails_the_source_cleanly(tmp_path) -> None:
    """py-lmdb invalidates open transactions when the map grows: the source
    reports it as a StorageError (the transfer fails, Raft retries)."""
    with Engine(tmp_path / "s", map_size=1 << 20) as engine:
        ps = region(engine, 1, b"", b"", n=200)
        ps.snapshot()
        source = engine.snapshot_sources.claim(1, 4, 2)
        assert source is not None
        first, _ = source.next_chunk(100)
        size = engine.map_size()
        batch = engine.batch()
        for i in range(300):
            kv.put(batch, b"big%d" % i, b"x" * 10_000)
        batch.commit()
        assert engine.map_size() > size and first
        with pytest.raises(StorageError, match="snapshot read failed"):
            source.next_chunk(1000)
        assert source.closed


def test_sources_nobody_claims_are_closed_by_the_second_sweep(engine: Engine) -> None:
    ps = region(engine, 1, b"", b"")
    ps.snapshot()
    sources = engine.snapshot_sources
    assert sources.sweep() == 0 and len(sources) == 1  # asked this turn: kept
    ps.snapshot()
    assert sources.sweep() == 1 and len(sources) == 1  # the older one is closed
    assert sources.claim(1, 4, 2) is not None
    assert sources.sweep() == 0 and len(sources) == 0
    ps.snapshot()
    engine.close()
    assert len(sources) == 0


def test_header_decoding_is_strict() -> None:
    good = SnapshotHeader(b"d", b"a", b"b", [b"c", b"s"])
    assert SnapshotHeader.decode(good.encode()) == good
    staged = SnapshotHeader(b"d", b"a", b"b", [], "1-2-3.snap")
    assert SnapshotHeader.decode(staged.encode(), staged=True) == staged
    bad = [
        b"\xc1",
        pack([FORMAT, b"d", b"a", b"b"]),
        pack([1, b"d", b"a", b"b", []]),
        pack([FORMAT, "d", b"a", b"b", []]),
        pack([FORMAT, b"d", b"a", b"b", [b"odd"]]),
        pack([FORMAT, b"d", b"a", b"b", [1, 2]]),
        pack({"a": 1}),
        staged.encode(),  # a sender never names a file
    ]
    for data in bad:
        with pytest.raises(ValueError):
            SnapshotHeader.decode(data)
    with pytest.raises(ValueError):
        SnapshotHeader.decode(good.encode(), staged=True)
    with pytest.raises(ValueError):
        SnapshotHeader.decode(pack([FORMAT, b"d", b"a", b"b", [], 5]), staged=True)
