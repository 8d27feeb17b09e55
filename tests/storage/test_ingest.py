from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from multiraft.raft.errors import SnapshotOutOfDate
from multiraft.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from multiraft.storage import (
    Engine,
    PeerStorage,
    RegionState,
    StorageError,
    WriteBatch,
    ingest,
    keys,
    kv,
)
from multiraft.storage.snapshot import SnapshotHeader

from . import ingest_child

CS = ConfState((1, 2, 3))
SESSIONS = [keys.pack_u64(7), b"session7"]


def stage(engine: Engine, pairs: list[tuple[bytes, bytes]], per_chunk: int = 3) -> str:
    """A staging file of `pairs`, in chunks; returns its name."""
    name = "1-2-3.snap"
    w = ingest.StagingWriter(os.path.join(ingest.staging_dir(engine), name))
    for i in range(0, len(pairs), per_chunk):
        w.write([b for kv_ in pairs[i : i + per_chunk] for b in kv_])
    w.finish()
    return name


def staged_snapshot(engine: Engine, pairs, index: int = 9, per_chunk: int = 3) -> Snapshot:
    header = SnapshotHeader(b"desc", b"m", b"", SESSIONS, stage(engine, pairs, per_chunk))
    return Snapshot(header.encode(), SnapshotMetadata(CS, index, 3))


def old_replica(engine: Engine, region_id: int = 1) -> PeerStorage:
    """A replica with a log, stale data in [m, +inf) and an old session."""
    ps = PeerStorage(engine, region_id)
    batch = engine.batch()
    ps.set_region(batch, RegionState(b"old", b"m", b"", CS))
    ps.append(batch, [Entry(1, i) for i in range(1, 6)])
    ps.set_hard_state(batch, HardState(1, 1, 5))
    ps.set_applied(batch, 5)
    for k in (b"a", b"m", b"mm", b"z"):
        kv.put(batch, k, b"stale")
    batch.put(keys.session_prefix(region_id) + keys.pack_u64(3), b"stale session")
    batch.commit()
    return ps


REPO = Path(__file__).resolve().parents[2]
PAIRS = [(b"m%03d" % i, b"v%d" % i) for i in range(20)]


def check_installed(engine: Engine, region_id: int = 1) -> None:
    ps = PeerStorage(engine, region_id)
    assert kv.scan(engine, b"", b"") == [(b"a", b"stale"), *PAIRS]
    assert ps.region == RegionState(b"desc", b"m", b"", CS)
    assert (ps.first_index(), ps.last_index(), ps.term(9)) == (10, 9, 3)
    assert ps.apply_state.applied_index == 9
    assert ps.hard_state == HardState(3, 0, 9), "commit reaches the snapshot, term its term"
    prefix = keys.session_prefix(region_id)
    with engine.read() as txn:
        cur = txn.cursor()
        cur.set_range(prefix)
        sessions = [(k[len(prefix) :], v) for k, v in cur if k.startswith(prefix)]
        assert txn.get(keys.ingest_marker_key(region_id)) is None
    assert sessions == [(SESSIONS[0], SESSIONS[1])]


def test_staging_file_round_trip_and_torn_tail(engine: Engine) -> None:
    name = stage(engine, PAIRS, per_chunk=7)
    path = os.path.join(ingest.staging_dir(engine), name)
    chunks = list(ingest.read_staging(path))
    assert [len(c) for c in chunks] == [14, 14, 12]
    assert [(c[i], c[i + 1]) for c in chunks for i in range(0, len(c), 2)] == PAIRS
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1)
    with pytest.raises(StorageError, match="torn"):
        list(ingest.read_staging(path))
    with pytest.raises(StorageError, match="unreadable"):
        list(ingest.read_staging(path + ".missing"))
    w = ingest.StagingWriter(path)
    w.write([b"k", b"v"])
    w.abort()
    assert not os.path.exists(path)


def test_ingest_replaces_range_state_log_and_sessions(engine: Engine) -> None:
    ps = old_replica(engine)
    snap = staged_snapshot(engine, PAIRS)
    header = ingest.begin(engine, 1, snap)
    assert ingest.pending(engine) == [(1, snap)]
    assert ingest.replace_data(engine, header, txn_bytes=40) == len(PAIRS)
    batch = engine.batch()
    ingest.finish(batch, ps, snap, header)
    batch.commit()
    check_installed(engine)
    assert ingest.pending(engine) == []
    assert ps.region == RegionState(b"desc", b"m", b"", CS) and ps.last_index() == 9


def test_ingest_writes_in_bounded_transactions(engine: Engine, monkeypatch) -> None:
    """Bytes put per commit stay under txn_bytes plus one chunk."""
    old_replica(engine)
    snap = staged_snapshot(engine, PAIRS, per_chunk=1)
    header = ingest.begin(engine, 1, snap)
    pending: list[int] = []
    commits: list[int] = []
    real_put_many, real_write = WriteBatch.put_many, Engine.write

    def put_many(batch: WriteBatch, items) -> None:
        items = list(items)
        pending.append(sum(len(k) + len(v) for k, v in items))
        real_put_many(batch, items)

    def write(engine: Engine, batch: WriteBatch) -> None:
        commits.append(sum(pending))
        pending.clear()
        real_write(engine, batch)

    monkeypatch.setattr(WriteBatch, "put_many", put_many)
    monkeypatch.setattr(Engine, "write", write)
    ingest.replace_data(engine, header, txn_bytes=30)
    assert kv.scan(engine, b"m", b"") == PAIRS
    assert len(commits) >= 4 and max(commits) <= 30 + 10  # + one chunk (and "z"s)


@pytest.mark.parametrize("done", ["marker", "half the data", "all the data"])
def test_a_restart_finishes_a_pending_ingest_exactly(tmp_path: Path, done: str) -> None:
    path = tmp_path / "s"
    with Engine(path) as engine:
        old_replica(engine)
        snap = staged_snapshot(engine, PAIRS)
        header = ingest.begin(engine, 1, snap)
        if done == "half the data":
            batch = engine.batch()
            for k, v in PAIRS[:10]:
                kv.put(batch, k, v)
            batch.commit()
        elif done == "all the data":
            ingest.replace_data(engine, header)
        stray = os.path.join(ingest.staging_dir(engine), "9-9-9.snap")
        Path(stray).write_bytes(b"left by a dead transfer")
    with Engine(path) as engine:
        ingest.recover(engine)
        check_installed(engine)
        assert os.listdir(ingest.staging_dir(engine)) == []
        ingest.recover(engine)  # nothing left to do
        check_installed(engine)


def test_an_out_of_date_snapshot_changes_no_raft_state(engine: Engine) -> None:
    ps = old_replica(engine)
    batch = engine.batch()
    ps.compact(batch, 4)
    batch.commit()
    snap = staged_snapshot(engine, PAIRS, index=3)
    header = SnapshotHeader.decode(snap.data, staged=True)
    batch = engine.batch()
    with pytest.raises(SnapshotOutOfDate):
        ingest.finish(batch, ps, snap, header)
    assert (ps.first_index(), ps.last_index()) == (5, 5)


def test_a_staging_name_must_be_a_plain_file_name(engine: Engine) -> None:
    header = SnapshotHeader(b"d", b"", b"", [], "../evil")
    with pytest.raises(StorageError, match="staging file name"):
        ingest.replace_data(engine, header)


def test_delete_some_deletes_at_most_n_keys_a_commit(engine: Engine) -> None:
    batch = engine.batch()
    for i in range(10):
        kv.put(batch, b"%d" % i, b"v")
    kv.put(batch, b"x", b"keep")
    batch.commit()
    lo, hi = keys.data_range(b"0", b"9")
    assert engine.delete_some(lo, hi, 4) is True
    assert len(kv.scan(engine, b"", b"")) == 7
    assert engine.delete_some(lo, hi, 4) is True
    assert engine.delete_some(lo, hi, 4) is False
    assert kv.scan(engine, b"", b"") == [(b"9", b"v"), (b"x", b"keep")]
    assert engine.delete_some(*keys.data_range(b"", b""), 100) is False
    assert kv.scan(engine, b"", b"") == []


@pytest.mark.slow
@pytest.mark.parametrize("commits", [0, 1, 10, 25, 31])  # 32: done
def test_sigkill_mid_ingest_then_restart_installs_exactly(tmp_path: Path, commits: int) -> None:
    """A real process killed after `commits` commits of a long ingest (tiny
    transactions: clearing the old data, then the staged pairs)."""
    path = tmp_path / "s"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.ingest_child", str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 20.0)
        assert ready and child.stdout.readline() == b"begun\n"
        for _ in range(commits):
            assert child.stdout.readline() == b"commit\n"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
    with Engine(path) as engine:
        ingest.recover(engine)
        assert kv.scan(engine, b"", b"") == [(b"a", b"outside"), *ingest_child.PAIRS]
        ps = PeerStorage(engine, 1)
        assert ps.apply_state.applied_index == 9 and ps.region.descriptor == b"desc"
        assert ingest.pending(engine) == [] and os.listdir(ingest.staging_dir(engine)) == []
