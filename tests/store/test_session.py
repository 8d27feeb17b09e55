from __future__ import annotations

import pytest

from multiraft.errors import InvalidRequest, StoreError
from multiraft.store import session as session_mod
from multiraft.store.session import DUPLICATE_BELOW_ACKED, NOT_APPLIED, Session, SessionTable


def test_unknown_client_has_no_answer() -> None:
    t = SessionTable()
    assert t.lookup(1, 1, 0, 10) is NOT_APPLIED
    assert t.take_changes() == ({}, set())


def test_record_then_lookup_dedupes() -> None:
    t = SessionTable()
    t.record(1, 5, 0, 10, True)
    assert t.lookup(1, 5, 0, 11)
    assert t.lookup(1, 6, 0, 11) is NOT_APPLIED
    assert t.lookup(2, 5, 0, 11) is NOT_APPLIED
    assert t.sessions[1].last_index == 10


def test_acked_forgets_older_results() -> None:
    t = SessionTable()
    for seq in (1, 2, 3, 4):
        t.record(7, seq, 0, 10 + seq, None)
    t.take_changes()
    assert t.lookup(7, 5, 3, 20) is NOT_APPLIED
    assert t.sessions[7].acked == 3
    assert sorted(t.sessions[7].results) == [3, 4]
    assert 7 in t.take_changes()[0]  # forgetting is a change to persist
    assert t.lookup(7, 3, 3, 21) is None


def test_lower_acked_changes_nothing() -> None:
    t = SessionTable()
    t.record(7, 4, 3, 10, None)
    t.take_changes()
    assert t.lookup(7, 4, 1, 11) is None
    assert t.sessions[7].acked == 3
    assert t.take_changes() == ({}, set())


def test_seq_below_acked_is_the_duplicate_error() -> None:
    t = SessionTable()
    t.record(7, 1, 0, 10, None)
    t.record(7, 2, 0, 11, None)
    assert t.lookup(7, 3, 2, 12) is NOT_APPLIED
    assert t.lookup(7, 1, 2, 13) == DUPLICATE_BELOW_ACKED
    assert isinstance(DUPLICATE_BELOW_ACKED, InvalidRequest)
    # acked is remembered from the record of a new session too
    t.record(8, 5, 5, 14, None)
    assert t.lookup(8, 4, 0, 15) == DUPLICATE_BELOW_ACKED


def test_results_per_client_are_bounded_lowest_seq_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_mod, "MAX_RESULTS_PER_CLIENT", 3)
    t = SessionTable()
    for i, seq in enumerate((5, 1, 4, 2, 3)):
        t.record(1, seq, 0, 10 + i, seq)
    assert sorted(t.sessions[1].results) == [3, 4, 5]
    assert t.lookup(1, 5, 0, 20) == 5


def test_client_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_mod, "MAX_CLIENTS", 2)
    t = SessionTable()
    for c in (1, 2, 3, 4):
        t.record(c, 1, 0, 10 + c, None)
        assert len(t.sessions) <= 2
    writes, deletes = t.take_changes()
    assert set(writes) == set(t.sessions)
    assert not (set(writes) & deletes)
    assert set(writes) | deletes == {1, 2, 3, 4}


def test_full_table_evicts_the_least_recently_active_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_mod, "MAX_CLIENTS", 2)
    t = SessionTable()
    t.record(1, 1, 0, 10, None)
    t.record(2, 1, 0, 11, None)
    t.record(1, 2, 0, 12, None)  # client 1 is now the more recent one
    t.take_changes()
    t.record(3, 1, 0, 13, True)
    assert set(t.sessions) == {1, 3}
    # exactly-once for the newcomer: its retry is answered from the table
    assert t.lookup(3, 1, 0, 14)
    writes, deletes = t.take_changes()
    assert set(writes) == {3}
    assert deletes == {2}


def test_eviction_ties_break_by_lowest_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_mod, "MAX_CLIENTS", 2)
    t = SessionTable({9: Session(0, 10), 4: Session(0, 10)})
    t.record(5, 1, 0, 11, None)
    assert set(t.sessions) == {5, 9}
    assert t.take_changes()[1] == {4}


def test_eviction_is_deterministic_across_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_mod, "MAX_CLIENTS", 3)
    ops = [(c % 5, c, c // 2) for c in range(20)]
    tables = [SessionTable(), SessionTable()]
    for t in tables:
        for client, seq, idx in ops:
            t.record(client, seq, 0, 100 + idx, seq)
    a, b = tables
    assert {c: (s.acked, s.last_index, s.results) for c, s in a.sessions.items()} == {
        c: (s.acked, s.last_index, s.results) for c, s in b.sessions.items()
    }
    assert a.take_changes() == b.take_changes()


def test_take_changes_writes_and_deletes_once() -> None:
    t = SessionTable()
    t.record(1, 1, 0, 10, None)
    t.record(2, 1, 0, 11, InvalidRequest("unknown write op 9"))
    writes, deletes = t.take_changes()
    assert set(writes) == {1, 2} and deletes == set()
    reloaded = SessionTable({2: Session.decode(writes[2])})
    stored = reloaded.lookup(2, 1, 0, 12)
    assert isinstance(stored, InvalidRequest) and str(stored) == "unknown write op 9"
    assert t.take_changes() == ({}, set())
    t.lookup(1, 2, 0, 12)  # a lookup that changes nothing writes nothing
    assert t.take_changes() == ({}, set())


def test_evicted_then_recorded_again_is_a_write_not_a_delete() -> None:
    t = SessionTable({1: Session(0, 5)})
    t.evicted.add(1)
    t.record(1, 3, 0, 12, None)
    writes, deletes = t.take_changes()
    assert set(writes) == {1} and deletes == set()


def test_session_encode_decode_round_trip() -> None:
    t = SessionTable()
    for seq, result in enumerate([None, True, False, [[b"k", b"v"]]], start=3):
        t.record(1, seq, 3, 2**40, result)
    t.record(1, 2**62, 3, 2**40, InvalidRequest("m", {"a": [1, 2]}))
    t.record(1, 7, 3, 2**40, StoreError("x"))
    s = t.sessions[1]
    assert Session.decode(s.encode()) == s
    assert Session.decode(Session().encode()) == Session()
    back = SessionTable({1: Session.decode(s.encode())})
    assert [back.lookup(1, seq, 3, 0) for seq in (3, 4, 5, 6)] == [
        None,
        True,
        False,
        [[b"k", b"v"]],
    ]
    failed = back.lookup(1, 2**62, 3, 0)
    assert isinstance(failed, InvalidRequest) and failed.detail == {"a": [1, 2]}
    assert isinstance(back.lookup(1, 7, 3, 0), StoreError)


def test_copy_is_deep() -> None:
    t = SessionTable()
    t.record(1, 1, 0, 10, None)
    t.record(2, 1, 0, 11, None)
    c = t.copy()
    assert c.dirty == set() and c.evicted == set()
    assert {k: (s.acked, s.last_index, s.results) for k, s in c.sessions.items()} == {
        k: (s.acked, s.last_index, s.results) for k, s in t.sessions.items()
    }
    assert c.sessions is not t.sessions
    c.record(1, 2, 0, 12, None)
    c.lookup(2, 3, 1, 13)
    c.record(3, 1, 0, 14, None)
    assert sorted(t.sessions[1].results) == [1]
    assert t.sessions[1].last_index == 10
    assert t.sessions[2].acked == 0 and 1 in t.sessions[2].results
    assert 3 not in t.sessions
    assert c.sessions[1] is not t.sessions[1]
