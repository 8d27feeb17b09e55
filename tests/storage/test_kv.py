from __future__ import annotations

from pathlib import Path

from multiraft.raft.types import ConfState, Entry, HardState
from multiraft.storage import Engine, PeerStorage, kv

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


def test_range_clear_goes_in_bounded_transactions(engine: Engine, monkeypatch) -> None:
    put_all(engine, {b"a": b"out", **{b"k%02d" % i: b"in" for i in range(10)}, b"z": b"out"})
    commits = []
    real = engine.delete_some

    def counting(lo: bytes, hi: bytes, max_keys: int) -> bool:
        commits.append(max_keys)
        return real(lo, hi, max_keys)

    monkeypatch.setattr(kv, "CLEAR_KEYS_PER_TXN", 3)
    monkeypatch.setattr(engine, "delete_some", counting)
    kv.RangeClear(engine, b"k", b"l").finish()
    assert kv.scan(engine, b"", b"") == [(b"a", b"out"), (b"z", b"out")]
    assert commits == [3, 3, 3, 3]  # 10 keys, at most 3 per transaction
