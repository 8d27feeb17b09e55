"""The store loop's send-order rule (`leader_sends_early`)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from multiraft.raft.rawnode import Ready
from multiraft.raft.types import HardState, Message, MessageType
from multiraft.store.store import leader_sends_early

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
