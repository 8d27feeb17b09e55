from __future__ import annotations

import os
import resource
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb
import pytest

from multiraft.storage import Engine, IdentMismatch, StorageFull, WriteBatch


class Owner:
    """A batch owner that records what it was told."""

    def __init__(self) -> None:
        self.committed: list[Any] = []

    def on_committed(self, pending: list[str]) -> None:
        self.committed.append(pending)


def all_items(engine: Engine) -> dict[bytes, bytes]:
    with engine.read() as txn:
        return dict(txn.cursor())


def test_nothing_is_visible_before_commit_and_all_after(engine: Engine) -> None:
    batch = engine.batch()
    batch.put(b"a", b"1")
    batch.put_many([(b"b", b"2"), (b"c", b"3")])
    assert all_items(engine) == {}
    batch.commit()
    assert all_items(engine) == {b"a": b"1", b"b": b"2", b"c": b"3"}
    assert batch.is_empty()


def test_operations_apply_in_order(engine: Engine) -> None:
    batch = engine.batch()
    batch.put(b"a", b"1")
    batch.delete(b"a")
    batch.delete(b"b")
    batch.put(b"b", b"2")
    batch.put_many([(b"c", b"3"), (b"d", b"4"), (b"e", b"5")])
    batch.delete_range(b"c", b"e")
    batch.put(b"c", b"6")
    engine.write(batch)
    assert all_items(engine) == {b"b": b"2", b"c": b"6", b"e": b"5"}


def test_delete_range_stops_at_hi_and_handles_empty_ranges(engine: Engine) -> None:
    batch = engine.batch()
    batch.put_many([(bytes([i]), b"v") for i in range(10)])
    batch.commit()
    batch.delete_range(b"\x03", b"\x06")
    batch.delete_range(b"\x20", b"\x30")
    batch.delete_range(b"\x08", b"\xff")
    batch.commit()
    assert sorted(all_items(engine)) == [bytes([i]) for i in (0, 1, 2, 6, 7)]


def test_owners_hear_of_commits_only(engine: Engine) -> None:
    owner = Owner()
    batch = engine.batch()
    batch.owners[owner] = ["x"]
    assert owner.committed == []
    batch.commit()
    assert owner.committed == [["x"]]
    batch.commit()
    assert owner.committed == [["x"]]


def test_failed_batch_writes_nothing_and_tells_no_owner(engine: Engine) -> None:
    owner = Owner()
    batch = engine.batch()
    batch.owners[owner] = []
    batch.put(b"a", b"1")
    batch.put(b"k" * 1000, b"too long a key for LMDB")
    with pytest.raises(lmdb.BadValsizeError):
        batch.commit()
    assert all_items(engine) == {}
    assert owner.committed == []
    ok = engine.batch()
    ok.put(b"b", b"2")
    ok.commit()
    assert all_items(engine) == {b"b": b"2"}


def test_map_grows_transparently(tmp_path: Path) -> None:
    with Engine(tmp_path / "s", map_size=64 << 10) as engine:
        batch = engine.batch()
        items = [(b"%08d" % i, os.urandom(200)) for i in range(20_000)]
        batch.put_many(items)
        batch.commit()
        assert engine.map_size() > 64 << 10
        assert all_items(engine) == dict(items)


def test_data_survives_reopen(tmp_path: Path) -> None:
    with Engine(tmp_path / "s") as engine:
        batch = engine.batch()
        batch.put(b"k", b"v")
        batch.commit()
    with Engine(tmp_path / "s") as engine:
        assert engine.get(b"k") == b"v"


def test_ident_is_written_once_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with Engine.open(path, store_id=3, cluster_id=9) as engine:
        assert engine.ident() == (9, 3)
    with Engine.open(path, store_id=3, cluster_id=9) as engine:
        assert engine.ident() == (9, 3)
    with pytest.raises(IdentMismatch, match="store 3 of cluster 9"):
        Engine.open(path, store_id=4, cluster_id=9)
    with pytest.raises(IdentMismatch):
        Engine.open(path, store_id=3, cluster_id=8)
    with Engine(tmp_path / "fresh") as engine:
        assert engine.ident() is None


@pytest.fixture
def file_size_limit() -> Iterator[Any]:
    """Lets a test cap this process's file size (EFBIG/short writes: a full
    disk as LMDB sees it); always restores the limit and SIGXFSZ."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        yield lambda n: resource.setrlimit(resource.RLIMIT_FSIZE, (n, hard))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


def fill(batch: WriteBatch, prefix: bytes, n: int) -> None:
    batch.put_many([(prefix + b"%06d" % i, b"x" * 100) for i in range(n)])


def test_full_disk_is_one_clear_error_and_the_batch_can_be_retried(
    tmp_path: Path, file_size_limit: Any
) -> None:
    with Engine(tmp_path / "s", map_size=1 << 20) as engine:
        batch = engine.batch()
        fill(batch, b"a", 1000)
        batch.commit()
        file_size_limit(os.path.getsize(tmp_path / "s" / "data.mdb"))
        owner = Owner()
        batch.owners[owner] = []
        fill(batch, b"b", 5000)
        with pytest.raises(StorageFull):
            batch.commit()
        assert len(all_items(engine)) == 1000
        assert owner.committed == []
        file_size_limit(resource.RLIM_INFINITY)
        batch.commit()
        assert len(all_items(engine)) == 6000
        assert len(owner.committed) == 1
