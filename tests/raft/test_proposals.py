"""Proposals: where they may be made, forwarding, and what is refused."""

from __future__ import annotations

import pytest

from multiraft.raft import (
    Entry,
    Message,
    ProposalDropped,
    SoftState,
    StateType,
    StepLocalMessage,
)
from multiraft.raft import MessageType as MT
from tests.raft.network import Network


def test_proposal_without_a_leader_is_dropped() -> None:
    net = Network((1, 2, 3))
    assert isinstance(net.raw(1).propose(b"x"), ProposalDropped)
    assert net.raw(1).raft.raft_log.last_index() == 0


def test_candidate_drops_proposals() -> None:
    net = Network((1, 2, 3))
    net.isolate(1)
    net.campaign(1)
    assert net.state(1) == StateType.CANDIDATE
    assert isinstance(net.raw(1).propose(b"x"), ProposalDropped)


def test_follower_forwards_proposals_to_the_leader() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    assert net.propose(2, b"from-2")
    assert net.propose(3, b"from-3")
    net.process_readies()
    assert sorted((m.frm, m.to) for m in net.take(lambda m: m.type == MT.PROP)) == [(2, 1), (3, 1)]
    assert net.raw(1).raft.raft_log.last_index() == 1, "nothing arrived yet"
    net.stabilize()
    for i in (1, 2, 3):
        assert net.applied(i) == []
    assert net.propose(2, b"from-2")
    assert net.propose(3, b"from-3")
    net.stabilize()
    for i in (1, 2, 3):
        assert net.applied(i) == [b"from-2", b"from-3"]


def test_follower_with_forwarding_disabled_refuses_proposals() -> None:
    net = Network((1, 2, 3), disable_proposal_forwarding=True)
    net.elect(1)
    assert isinstance(net.raw(2).propose(b"x"), ProposalDropped)
    assert net.propose(1, b"y")
    net.stabilize()
    assert net.applied(2) == [b"y"]


def test_forwarded_proposal_reaching_a_node_without_leader_is_dropped() -> None:
    net = Network((1, 2, 3))
    prop = Message(MT.PROP, to=1, frm=2, entries=[Entry(0, 0, data=b"x")])
    assert isinstance(net.raw(1).step(prop), ProposalDropped)


def test_proposals_from_everywhere_are_applied_in_one_order() -> None:
    net = Network((1, 2, 3, 4, 5), seed=7)
    net.elect(3)
    for k in range(20):
        assert net.propose(1 + k % 5, b"p%d" % k)
        if k % 3 == 0:
            net.step()
    net.stabilize()
    sequences = {tuple(net.applied(i)) for i in net.nodes}
    assert len(sequences) == 1
    (seq,) = sequences
    assert sorted(seq) == sorted(b"p%d" % k for k in range(20))


@pytest.mark.parametrize("t", [MT.HUP, MT.BEAT, MT.UNREACHABLE, MT.SNAP_STATUS, MT.CHECK_QUORUM])
def test_local_messages_are_refused_from_the_network(t: MT) -> None:
    net = Network((1, 2, 3))
    assert isinstance(net.raw(1).step(Message(t, to=1, frm=2, term=1)), StepLocalMessage)


def test_ready_reports_leadership_changes_in_soft_state() -> None:
    net = Network((1, 2, 3))
    raw = net.raw(1)
    raw.campaign()
    rd = raw.ready()
    assert rd.soft_state == SoftState(0, StateType.CANDIDATE)
    assert rd.hard_state.term == 1 and rd.hard_state.vote == 1 and rd.must_sync
    raw.advance(rd)
    for i in (2, 3):
        raw.step(Message(MT.VOTE_RESP, to=1, frm=i, term=1))
    rd = raw.ready()
    assert rd.soft_state == SoftState(1, StateType.LEADER)
    assert [e.index for e in rd.entries] == [1]
    net.nodes[1].storage.append(rd.entries)
    raw.advance(rd)
    raw.step(Message(MT.APP_RESP, to=1, frm=2, term=1, index=1))
    rd = raw.ready()
    assert rd.soft_state is None, "unchanged"


def test_a_forwarded_proposal_reaching_a_candidate_comes_back_as_a_value() -> None:
    net = Network((1, 2, 3))
    net.isolate(1)
    net.campaign(1)
    prop = Message(MT.PROP, to=1, frm=2, entries=[Entry(0, 0, data=b"x")])
    assert isinstance(net.raw(1).step(prop), ProposalDropped)
    assert net.raw(1).raft.raft_log.last_index() == 0


def test_forwarding_sends_a_copy_and_leaves_the_callers_message_alone() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    prop = Message(MT.PROP, to=2, frm=2, entries=[Entry(0, 0, data=b"x")])
    assert net.raw(2).step(prop) is None
    assert prop.to == 2
    forwarded = [m for m in net.raw(2).ready().messages if m.type == MT.PROP]
    assert [m.to for m in forwarded] == [1] and forwarded[0] is not prop
