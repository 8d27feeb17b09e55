"""PreVote (Raft thesis §9.6): a node first asks whether it could win, without
bumping its term, so that a node rejoining after a partition does not disrupt."""

from __future__ import annotations

from multiraft.raft import Message, StateType
from multiraft.raft import MessageType as MT
from tests.raft.network import Network


def test_pre_candidate_asks_for_the_next_term_without_taking_it() -> None:
    net = Network((1, 2, 3), pre_vote=True)
    net.campaign(1)
    net.process_readies()
    r = net.raw(1).raft
    assert (r.state, r.term) == (StateType.PRE_CANDIDATE, 0)
    pre_votes = net.take(lambda m: m.type == MT.PRE_VOTE)
    assert sorted(m.to for m in pre_votes) == [2, 3]
    assert {m.term for m in pre_votes} == {1}
    for m in pre_votes:
        net.deliver(m)
    net.stabilize()
    assert (r.state, r.term) == (StateType.LEADER, 1), "pre-vote won, then the real vote"
    for i in (2, 3):
        assert net.nodes[i].storage.hard_state.vote == 1


def test_granting_a_pre_vote_changes_neither_term_nor_vote() -> None:
    net = Network((1, 2, 3), pre_vote=True)
    net.elect(2)  # node 1 voted for 2 in term 1
    net.take()
    net.deliver(Message(MT.PRE_VOTE, to=1, frm=3, term=2, index=1, log_term=1))
    net.process_readies()
    (resp,) = net.take()
    assert (resp.type, resp.reject, resp.term) == (MT.PRE_VOTE_RESP, False, 2)
    r = net.raw(1).raft
    assert (r.term, r.vote, r.lead) == (1, 2, 2)


def test_isolated_node_does_not_raise_its_term_nor_disrupt_on_return() -> None:
    net = Network((1, 2, 3), pre_vote=True)
    net.elect(1)
    net.isolate(3)
    net.tick_all(100)
    assert net.term(3) == 1
    assert net.state(3) in (StateType.PRE_CANDIDATE, StateType.FOLLOWER)
    net.heal()
    net.tick_all(20)
    assert net.leader() == 1
    assert {net.term(i) for i in (1, 2, 3)} == {1}


def test_without_pre_vote_the_returning_node_disrupts_the_leader() -> None:
    """The contrast that justifies PreVote."""
    net = Network((1, 2, 3))
    net.elect(1)
    net.isolate(3)
    net.tick_all(100)
    stale_term = net.term(3)
    assert stale_term > 1
    net.heal()
    net.tick_all(50)
    assert net.term(1) >= stale_term, "the old leader was deposed by the higher term"


def test_node_with_stale_log_loses_the_pre_vote_and_keeps_its_term() -> None:
    net = Network((1, 2, 3), pre_vote=True)
    net.elect(1)
    net.isolate(3)
    assert net.propose(1, b"x")
    net.stabilize()
    net.heal()
    net.campaign(3)
    net.stabilize()
    assert (net.state(3), net.term(3)) == (StateType.FOLLOWER, 1)
    assert net.leader() == 1 and net.term(1) == 1
    assert not [m for m in net.sent if m.type == MT.VOTE and m.frm == 3]


def test_pre_candidate_follows_a_leader_of_its_term() -> None:
    net = Network((1, 2, 3), pre_vote=True)
    net.elect(1)
    net.isolate(3)
    net.campaign(3)
    net.process_readies()
    assert net.state(3) == StateType.PRE_CANDIDATE
    net.deliver(Message(MT.HEARTBEAT, to=3, frm=1, term=1, commit=1))
    r = net.raw(3).raft
    assert (r.state, r.term, r.lead) == (StateType.FOLLOWER, 1, 1)


def test_pre_candidate_behind_in_term_catches_up_from_rejections() -> None:
    """A pre-vote of a term not above the voter's is rejected with the voter's term,
    which the pre-candidate then adopts."""
    net = Network((1, 2, 3), pre_vote=True)
    net.deliver(Message(MT.HEARTBEAT, to=1, frm=2, term=5))
    net.process_readies()
    net.take()
    net.deliver(Message(MT.PRE_VOTE, to=1, frm=3, term=3))
    net.process_readies()
    (resp,) = net.take()
    assert (resp.type, resp.reject, resp.term) == (MT.PRE_VOTE_RESP, True, 5)
    net.campaign(3)
    net.process_readies()
    net.take()
    net.deliver(resp)
    r = net.raw(3).raft
    assert (r.state, r.term) == (StateType.FOLLOWER, 5)


def test_pre_vote_with_check_quorum_rejoining_node_does_not_disrupt() -> None:
    net = Network((1, 2, 3), pre_vote=True, check_quorum=True)
    net.elect(1)
    net.isolate(3)
    net.tick_all(100)
    net.heal()
    net.tick_all(30)
    assert net.leader() == 1
    assert {net.term(i) for i in (1, 2, 3)} == {1}
