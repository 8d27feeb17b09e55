"""A turn's Readies: the send-order rule (`leader_sends_early`) and the
apply dispatch (results matched to proposals by index and term, applied
index, sessions and data written together)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from multiraft.errors import NotLeader
from multiraft.raft import Entry, EntryType, HardState, Message, MessageType, Ready
from multiraft.storage import keys, kv
from multiraft.storage.engine import Engine
from multiraft.storage.peer_storage import PeerStorage
from multiraft.store.operation.ready import leader_sends_early
from multiraft.store.outbox import Handle
from multiraft.store.region_state import BOOTSTRAP_INDEX
from multiraft.store.session import SessionTable, load_sessions
from tests.store.operation.conftest import REGION, TERM, Harness
from tests.store.operation.test_write import cas, put

DURABLE = HardState(term=3, vote=1, commit=10)


def peer(leader: bool, durable: HardState = DURABLE) -> Any:
    return SimpleNamespace(storage=SimpleNamespace(hard_state=durable), is_leader=lambda: leader)


def msgs(*types: MessageType) -> list[Message]:
    return [Message(t, to=2, frm=1, term=3) for t in types]


MIXED = msgs(MessageType.APP, MessageType.HEARTBEAT, MessageType.SNAP, MessageType.READ_INDEX_RESP)


def test_a_leader_with_a_durable_term_sends_appends_and_heartbeats_first() -> None:
    rd = Ready(hard_state=HardState(term=3, vote=1, commit=12), messages=MIXED)
    early, late = leader_sends_early(peer(leader=True), rd)
    assert [m.type for m in early] == [MessageType.APP, MessageType.HEARTBEAT]
    assert [m.type for m in late] == [MessageType.SNAP, MessageType.READ_INDEX_RESP]
    early, late = leader_sends_early(peer(leader=True), Ready(messages=MIXED))
    assert len(early) == 2 and len(late) == 2


def test_a_new_term_or_vote_waits_for_the_fsync() -> None:
    for hs in (HardState(term=4, vote=1, commit=10), HardState(term=3, vote=2, commit=10)):
        early, late = leader_sends_early(peer(leader=True), Ready(hard_state=hs, messages=MIXED))
        assert early == [] and late == MIXED


def test_followers_send_nothing_before_the_fsync() -> None:
    responses = msgs(MessageType.APP_RESP, MessageType.HEARTBEAT_RESP, MessageType.VOTE_RESP)
    early, late = leader_sends_early(peer(leader=False), Ready(messages=responses))
    assert early == [] and late == responses


def test_applied_index_sessions_and_data_reach_disk_together_in_a_flush(h: Harness) -> None:
    e1 = h.entry(put(b"k", b"v", client=3, seq=1))
    e2 = h.entry(cas(b"k", b"v", b"w", client=4, seq=7))
    tb = h.batch()
    h.apply_into(tb, e1, e2)
    tb.batch.commit()
    # The turn's batch is committed; what it applied waits in the buffer,
    # where reads see it, and nothing of it is on disk yet.
    assert h.ctx.applied.get(REGION.id, b"k") == b"w"
    assert h.peer.applied == e2.index
    assert h.peer.storage.apply_state.applied_index == BOOTSTRAP_INDEX
    assert load_sessions(h.engine, REGION.id).sessions == {}
    assert kv.get(h.engine, b"k") is None
    tb = h.batch()
    h.ctx.applied.flush(tb.batch)
    tb.batch.commit()
    h.engine.close()
    with Engine(h.path, sync=False) as again:
        assert PeerStorage(again, REGION.id).apply_state.applied_index == e2.index
        sessions = load_sessions(again, REGION.id).sessions
        assert set(sessions) == {3, 4}
        assert SessionTable(sessions).lookup(4, 7, 0, 0) is True
        assert sessions[4].last_index == e2.index
        assert kv.get(again, b"k") == b"w"
        prefix = keys.session_prefix(REGION.id)
        assert again.get(prefix + keys.pack_u64(3)) is not None
    h.engine = Engine(h.path, sync=False)  # for the fixture to close


def test_empty_entries_advance_the_applied_index(h: Harness) -> None:
    noop = Entry(TERM, h.next_index)
    h.next_index += 1
    h.apply(noop, propose=False)
    assert h.peer.storage.apply_state.applied_index == noop.index
    h.apply(propose=False)  # nothing to apply: nothing changes
    assert h.peer.storage.apply_state.applied_index == noop.index


def test_answers_are_matched_by_index_and_term(h: Harness) -> None:
    mine = h.entry(put(b"k", b"mine", client=1, seq=1))
    theirs = h.entry(put(b"k", b"theirs", client=2, seq=1), term=TERM + 1)
    later = Entry(TERM + 1, h.next_index, EntryType.NORMAL, b"")
    h.peer.proposals.extend(
        [
            (mine.index, TERM, [Handle(b"a", 1)]),
            (theirs.index, TERM, [Handle(b"b", 2)]),  # overwritten by a new leader
            (later.index + 5, TERM, [Handle(b"c", 3)]),  # can no longer commit
        ]
    )
    h.apply(mine, theirs, propose=False)
    by_id: dict[int, Any] = h.by_id()
    assert by_id[1] is None
    for rid in (2, 3):
        assert isinstance(by_id[rid], NotLeader)
        assert by_id[rid].detail["region"] == REGION.to_wire()
    assert len(h.answers) == 3
    assert not h.peer.proposals
    assert kv.get(h.engine, b"k") == b"theirs"  # the committed entry is applied all the same


def test_proposal_of_an_undecodable_entry_gets_no_answer(h: Harness) -> None:
    bad = h.raw_entry(b"\xc1garbage")
    h.peer.proposals.append((bad.index, TERM, [Handle(b"a", 1)]))
    h.apply(bad, propose=False)
    assert h.answers == []
    assert h.peer.storage.apply_state.applied_index == bad.index
