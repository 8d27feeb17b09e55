"""The apply buffer: reads see it over LMDB (also while a flush waits for
its commit), a flush writes it all, and regions are written when due, by
age (oldest first, a few per turn) or because the buffer is full."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multiraft.storage import kv
from multiraft.storage.engine import Engine
from multiraft.store.apply_buffer import FLUSH_KEYS_PER_TURN, ApplyBuffer
from multiraft.store.session import SessionTable
from tests.storage.test_kv import put_all


def _short(min_size: int) -> st.SearchStrategy[bytes]:
    """Short keys over a small alphabet, so buffer and LMDB keys collide."""
    return st.text("abcd", min_size=min_size, max_size=3).map(str.encode)


KEYS = _short(1)
VALUES = st.one_of(st.none(), st.binary(min_size=1, max_size=4))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Engine(tmp_path / "db", sync=False, map_size=1 << 22) as e:
        yield e


def replica(region_id: int = 1) -> Any:
    """What the buffer uses of a replica: its region id and sessions (its
    storage only once an applied index is recorded)."""
    return SimpleNamespace(region=SimpleNamespace(id=region_id), sessions=SessionTable())


R = replica()


def test_reads_see_the_buffer_over_lmdb(engine: Engine) -> None:
    put_all(engine, {b"a": b"1", b"b": b"2", b"c": b"3"})
    buf = ApplyBuffer(engine, flush_interval=1.0, flush_bytes=1 << 20)
    buf.put(R, b"b", b"new")
    buf.put(R, b"c", None)
    buf.put(R, b"d", b"4")
    assert [buf.get(1, k) for k in (b"a", b"b", b"c", b"d", b"e")] == [
        b"1",
        b"new",
        None,
        b"4",
        None,
    ]
    assert buf.scan(1, b"", b"", None) == [(b"a", b"1"), (b"b", b"new"), (b"d", b"4")]
    assert buf.scan(1, b"b", b"d", None) == [(b"b", b"new")]
    assert buf.scan(1, b"a", b"", 2) == [(b"a", b"1"), (b"b", b"new")]
    assert kv.get(engine, b"b") == b"2", "nothing is written before a flush"


def test_a_flush_stays_readable_until_its_batch_commits(engine: Engine) -> None:
    """A split flushes in the middle of a turn; a CAS applied after it in
    the same turn must still see what the flush took out of the buffer."""
    put_all(engine, {b"k": b"old"})
    buf = ApplyBuffer(engine, flush_interval=1.0, flush_bytes=1 << 20)
    buf.put(R, b"k", b"mid")
    buf.put(R, b"gone", b"x")
    batch = engine.batch()
    buf.flush(batch)
    assert buf.get(1, b"k") == b"mid" and kv.get(engine, b"k") == b"old"
    buf.put(R, b"gone", None)
    assert buf.scan(1, b"", b"", None) == [(b"k", b"mid")]
    batch.commit()
    assert kv.get(engine, b"k") == b"mid"
    assert buf.get(1, b"gone") is None and kv.get(engine, b"gone") == b"x"
    buf.flush_now()
    assert kv.get(engine, b"gone") is None


def recording_replica(region_id: int, written: list[tuple[int, int]]) -> Any:
    """A replica whose storage records the applied indexes written."""
    r = replica(region_id)
    r.storage = SimpleNamespace(set_applied=lambda _batch, i: written.append((region_id, i)))
    return r


def test_regions_are_written_when_due_oldest_first(engine: Engine) -> None:
    written: list[tuple[int, int]] = []
    one, two = recording_replica(1, written), recording_replica(2, written)
    buf = ApplyBuffer(engine, flush_interval=0.5, flush_bytes=1 << 20)
    assert not buf.due(1e9), "an empty buffer is never due"
    buf.put(one, b"a", b"1")
    buf.applied_to(one, 5, now=10.0)
    buf.put(two, b"b", b"2")
    buf.applied_to(two, 7, now=10.2)
    buf.applied_to(one, 6, now=10.3)  # the oldest change counts
    assert not buf.due(10.4) and buf.due(10.5)
    batch = engine.batch()
    buf.flush_due(batch, 10.5)
    batch.commit()
    assert written == [(1, 6)] and kv.get(engine, b"a") == b"1" and kv.get(engine, b"b") is None
    assert not buf.due(10.6) and buf.due(10.7)
    buf.flush_now()
    assert written == [(1, 6), (2, 7)] and kv.get(engine, b"b") == b"2"
    assert not buf.due(1e9)


def test_a_turn_writes_about_its_key_budget_of_due_regions(engine: Engine) -> None:
    written: list[tuple[int, int]] = []
    buf = ApplyBuffer(engine, flush_interval=0.5, flush_bytes=1 << 30)
    per_region = FLUSH_KEYS_PER_TURN // 2 + 1
    for rid in (1, 2, 3):
        r = recording_replica(rid, written)
        for i in range(per_region):
            buf.put(r, b"%d-%d" % (rid, i), b"v")
        buf.applied_to(r, rid, now=0.0)
    batch = engine.batch()
    buf.flush_due(batch, 1.0)
    assert written == [(1, 1), (2, 2)], "two regions use up the budget"
    buf.flush_due(batch, 1.0)
    batch.commit()
    assert written == [(1, 1), (2, 2), (3, 3)]


def test_a_full_buffer_is_written_whatever_its_age(engine: Engine) -> None:
    written: list[tuple[int, int]] = []
    buf = ApplyBuffer(engine, flush_interval=60.0, flush_bytes=100)
    one, two = recording_replica(1, written), recording_replica(2, written)
    buf.put(one, b"k", b"v" * 60)
    buf.applied_to(one, 3, now=0.0)
    buf.put(two, b"j", b"v" * 30)
    buf.applied_to(two, 4, now=0.0)
    assert not buf.due(1.0)
    buf.put(two, b"j", b"v" * 30)  # overwrites count: a bound, not a measure
    assert buf.due(1.0)
    batch = engine.batch()
    buf.flush_due(batch, 1.0)
    batch.commit()
    assert written == [(1, 3)], "written until under the bound"
    assert not buf.due(1.0) and buf.get(2, b"j") == b"v" * 30


@settings(max_examples=200, deadline=None)
@given(
    stored=st.dictionaries(KEYS, st.binary(min_size=1, max_size=4), max_size=12),
    before=st.lists(st.tuples(KEYS, VALUES), max_size=12),
    after=st.lists(st.tuples(KEYS, VALUES), max_size=12),
    start=_short(0),
    end=_short(0),
    limit=st.one_of(st.none(), st.integers(0, 8)),
)
def test_scan_is_the_model_of_lmdb_with_the_writes_laid_over(
    tmp_path_factory: pytest.TempPathFactory,
    stored: dict[bytes, bytes],
    before: list[tuple[bytes, bytes | None]],
    after: list[tuple[bytes, bytes | None]],
    start: bytes,
    end: bytes,
    limit: int | None,
) -> None:
    with Engine(tmp_path_factory.mktemp("db"), sync=False, map_size=1 << 22) as engine:
        put_all(engine, stored)
        buf = ApplyBuffer(engine, flush_interval=1.0, flush_bytes=1 << 20)
        model: dict[bytes, bytes | None] = dict(stored)
        for k, v in before:
            buf.put(R, k, v)
            model[k] = v
        batch = engine.batch()
        buf.flush(batch)  # flushed, not committed: `before` is read from the flush
        for k, v in after:
            buf.put(R, k, v)
            model[k] = v
        inside = [(k, v) for k, v in model.items() if k >= start and (not end or k < end)]
        want = sorted((k, v) for k, v in inside if v is not None)
        if limit is not None:
            want = want[:limit]
        assert buf.scan(1, start, end, limit) == want
        for k in {k for k, _ in before + after} | set(stored):
            assert buf.get(1, k) == model[k]
        batch.commit()
        buf.flush_now()
        assert kv.scan(engine, start, end, limit) == want


def test_one_region_can_be_written_on_its_own(engine: Engine) -> None:
    """The split checker measures a region on disk: it writes that region's
    buffer first, and only that region's."""
    written: list[tuple[int, int]] = []
    buf = ApplyBuffer(engine, flush_interval=60.0, flush_bytes=1 << 20)
    for rid in (1, 2):
        r = recording_replica(rid, written)
        buf.put(r, b"k%d" % rid, b"v")
        buf.applied_to(r, 10 + rid, now=0.0)
    buf.flush_now(2)
    buf.flush_now(3)  # nothing buffered: nothing written
    assert written == [(2, 12)]
    assert kv.get(engine, b"k2") == b"v" and kv.get(engine, b"k1") is None
    assert buf.get(1, b"k1") == b"v"
