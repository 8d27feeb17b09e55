"""The apply buffer: reads see it over LMDB (also while a flush waits for
its commit), a flush writes it all, and it is due by age or by size."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multiraft.storage import kv
from multiraft.storage.engine import Engine
from multiraft.store.apply_buffer import ApplyBuffer


def _short(min_size: int) -> st.SearchStrategy[bytes]:
    """Short keys over a small alphabet, so buffer and LMDB keys collide."""
    return st.text("abcd", min_size=min_size, max_size=3).map(str.encode)


KEYS = _short(1)
VALUES = st.one_of(st.none(), st.binary(min_size=1, max_size=4))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Engine(tmp_path / "db", sync=False, map_size=1 << 22) as e:
        yield e


def store(engine: Engine, pairs: dict[bytes, bytes]) -> None:
    batch = engine.batch()
    for k, v in pairs.items():
        kv.put(batch, k, v)
    batch.commit()


def test_reads_see_the_buffer_over_lmdb(engine: Engine) -> None:
    store(engine, {b"a": b"1", b"b": b"2", b"c": b"3"})
    buf = ApplyBuffer(engine, flush_interval=1.0, flush_bytes=1 << 20)
    buf.put(b"b", b"new")
    buf.put(b"c", None)
    buf.put(b"d", b"4")
    assert [buf.get(k) for k in (b"a", b"b", b"c", b"d", b"e")] == [b"1", b"new", None, b"4", None]
    assert buf.scan(b"", b"", None) == [(b"a", b"1"), (b"b", b"new"), (b"d", b"4")]
    assert buf.scan(b"b", b"d", None) == [(b"b", b"new")]
    assert buf.scan(b"a", b"", 2) == [(b"a", b"1"), (b"b", b"new")]
    assert kv.get(engine, b"b") == b"2", "nothing is written before a flush"


def test_a_flush_stays_readable_until_its_batch_commits(engine: Engine) -> None:
    """A split flushes in the middle of a turn; a CAS applied after it in
    the same turn must still see what the flush took out of the buffer."""
    store(engine, {b"k": b"old"})
    buf = ApplyBuffer(engine, flush_interval=1.0, flush_bytes=1 << 20)
    buf.put(b"k", b"mid")
    buf.put(b"gone", b"x")
    batch = engine.batch()
    buf.flush(batch)
    assert buf.get(b"k") == b"mid" and kv.get(engine, b"k") == b"old"
    buf.put(b"gone", None)
    assert buf.scan(b"", b"", None) == [(b"k", b"mid")]
    batch.commit()
    assert kv.get(engine, b"k") == b"mid"
    assert buf.get(b"gone") is None and kv.get(engine, b"gone") == b"x"
    buf.flush_now()
    assert kv.get(engine, b"gone") is None


def test_due_by_age_or_by_size(engine: Engine) -> None:
    buf = ApplyBuffer(engine, flush_interval=0.5, flush_bytes=100)
    assert not buf.due(1e9), "an empty buffer is never due"
    buf.put(b"k", b"v")
    assert not buf.due(10.0), "puts alone do not start the clock: applied_to does"
    buf._since = 10.0
    assert not buf.due(10.4) and buf.due(10.5)
    big = ApplyBuffer(engine, flush_interval=60.0, flush_bytes=100)
    big.put(b"k", b"v" * 98)
    assert not big.due(0.0)
    big.put(b"k", b"v")
    assert big.due(0.0)
    big.flush_now()
    assert not big.due(0.0) and kv.get(engine, b"k") == b"v"


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
        store(engine, stored)
        buf = ApplyBuffer(engine, flush_interval=1.0, flush_bytes=1 << 20)
        model: dict[bytes, bytes | None] = dict(stored)
        for k, v in before:
            buf.put(k, v)
            model[k] = v
        batch = engine.batch()
        buf.flush(batch)  # flushed, not committed: `before` is read from the flush
        for k, v in after:
            buf.put(k, v)
            model[k] = v
        inside = [(k, v) for k, v in model.items() if k >= start and (not end or k < end)]
        want = sorted((k, v) for k, v in inside if v is not None)
        if limit is not None:
            want = want[:limit]
        assert buf.scan(start, end, limit) == want
        for k in {k for k, _ in before + after} | set(stored):
            assert buf.get(k) == model[k]
        batch.commit()
        buf.flush_now()
        assert kv.scan(engine, start, end, limit) == want
