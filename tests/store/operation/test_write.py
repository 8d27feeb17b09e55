"""Writes: their apply side (semantics, exactly-once, range checks)."""

from __future__ import annotations

from multiraft.errors import InvalidRequest, KeyNotInRegion
from multiraft.storage import kv
from multiraft.store.commands import CAS, DELETE, PUT, WriteCommand
from multiraft.store.outbox import Handle
from multiraft.store.session import DUPLICATE_BELOW_ACKED, NOT_APPLIED, load_sessions
from tests.store.operation.conftest import REGION, TERM, Harness


def put(key: bytes, value: bytes, client: int = 1, seq: int = 1, acked: int = 0) -> WriteCommand:
    return WriteCommand(PUT, client, seq, acked, 1, key, value)


def delete(key: bytes, client: int = 1, seq: int = 1, acked: int = 0) -> WriteCommand:
    return WriteCommand(DELETE, client, seq, acked, 1, key)


def cas(
    key: bytes, expected: bytes | None, new: bytes | None, client: int = 1, seq: int = 1
) -> WriteCommand:
    return WriteCommand(CAS, client, seq, 0, 1, key, expected, new)


def test_put_delete_cas_semantics(h: Harness) -> None:
    e1 = h.entry(put(b"k", b"1", seq=1), put(b"other", b"o", seq=2))
    e2 = h.entry(
        cas(b"k", b"1", b"2", seq=3),  # swaps
        cas(b"k", b"1", b"3", seq=4),  # sees 2: no swap
        cas(b"new", None, b"n", seq=5),  # absent -> set
        cas(b"new", None, b"m", seq=6),  # present: no swap
    )
    e3 = h.entry(delete(b"k", seq=7), cas(b"new", b"n", None, seq=8), delete(b"missing", seq=9))
    answers = h.apply(e1, e2, e3)
    assert h.results(e1, answers) == [None, None]
    assert h.results(e2, answers) == [True, False, True, False]
    assert h.results(e3, answers) == [None, True, None]
    assert kv.get(h.engine, b"k") is None
    assert kv.get(h.engine, b"new") is None
    assert kv.get(h.engine, b"other") == b"o"


def test_two_cas_on_one_key_in_one_batch_see_each_other(h: Harness) -> None:
    h.apply(h.entry(put(b"k", b"0", seq=1)))
    e1 = h.entry(cas(b"k", b"0", b"1", client=1, seq=2), cas(b"k", b"0", b"x", client=2, seq=1))
    e2 = h.entry(cas(b"k", b"1", b"2", client=3, seq=1))
    h.answers.clear()
    h.peer.proposals.append((e1.index, TERM, [Handle(b"c", 1), Handle(b"c", 2)]))
    h.peer.proposals.append((e2.index, TERM, [Handle(b"c", 3)]))
    tb = h.batch()
    h.apply_into(tb, e1)
    h.apply_into(tb, e2)  # a second call in the same turn, same batch
    assert kv.get(h.engine, b"k") == b"0"  # nothing is on disk before a flush
    h.ctx.applied.flush(tb.batch)
    tb.batch.commit()
    assert [r for _, r in h.answers] == [True, False, True]
    assert kv.get(h.engine, b"k") == b"2"


def test_delete_then_cas_absent_in_one_batch(h: Harness) -> None:
    h.apply(h.entry(put(b"k", b"0", seq=1)))
    e = h.entry(delete(b"k", seq=2), cas(b"k", None, b"fresh", seq=3))
    assert h.results(e, h.apply(e)) == [None, True]
    assert kv.get(h.engine, b"k") == b"fresh"


def test_duplicate_is_answered_from_the_session_and_not_reapplied(h: Harness) -> None:
    e1 = h.entry(cas(b"k", None, b"1", client=9, seq=4))
    assert h.results(e1, h.apply(e1)) == [True]
    h.apply(h.entry(put(b"k", b"0", client=8, seq=1)))  # someone else resets it
    retry = h.entry(cas(b"k", None, b"1", client=9, seq=4))
    assert h.results(retry, h.apply(retry)) == [True]  # the first answer...
    assert kv.get(h.engine, b"k") == b"0"  # ...and not applied again
    # the same retry inside one entry is deduplicated as well
    twice = h.entry(put(b"j", b"a", client=9, seq=5), put(b"j", b"b", client=9, seq=5))
    assert h.results(twice, h.apply(twice)) == [None, None]
    assert kv.get(h.engine, b"j") == b"a"


def test_sessions_survive_a_reload_from_disk(h: Harness) -> None:
    h.apply(h.entry(cas(b"k", None, b"1", client=9, seq=4)))
    h.apply(h.entry(put(b"k", b"0", client=8, seq=1)))
    h.peer.sessions = load_sessions(h.engine, REGION.id)
    retry = h.entry(cas(b"k", None, b"1", client=9, seq=4))
    assert h.results(retry, h.apply(retry)) == [True]
    assert kv.get(h.engine, b"k") == b"0"


def test_seq_below_acked_is_refused_and_not_applied(h: Harness) -> None:
    h.apply(
        h.entry(put(b"k", b"1", seq=1), put(b"k", b"2", seq=2), put(b"k", b"3", seq=3, acked=3))
    )
    late = h.entry(put(b"k", b"stale", seq=1, acked=3))
    assert h.results(late, h.apply(late)) == [DUPLICATE_BELOW_ACKED]
    assert kv.get(h.engine, b"k") == b"3"


def test_key_outside_the_region_is_refused_and_not_recorded(h: Harness) -> None:
    e = h.entry(put(b"z", b"v", client=5, seq=1), put(b"a", b"v", client=5, seq=2))
    for r in h.results(e, h.apply(e)):
        assert isinstance(r, KeyNotInRegion)
        assert r.detail == {"region": REGION.to_wire()}
    assert kv.get(h.engine, b"z") is None and kv.get(h.engine, b"a") is None
    assert h.peer.sessions.lookup(5, 1, 0, 100) is NOT_APPLIED
    assert load_sessions(h.engine, REGION.id).sessions == {}
    # the client retries the same seq with a key that belongs here: applied
    retry = h.entry(put(b"c", b"v", client=5, seq=1))
    assert h.results(retry, h.apply(retry)) == [None]
    assert kv.get(h.engine, b"c") == b"v"


def test_unknown_write_op_is_an_invalid_request(h: Harness) -> None:
    e = h.entry(WriteCommand(9, 1, 1, 0, 1, b"k", b"v"))
    [result] = h.results(e, h.apply(e))
    assert isinstance(result, InvalidRequest)
    assert kv.get(h.engine, b"k") is None
