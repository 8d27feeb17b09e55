"""CheckQuorum: a leader that cannot hear from a quorum within an election timeout
steps down, and followers that heard from a leader recently ignore vote requests."""

from __future__ import annotations

from multiraft.raft import NONE, Message, StateType
from multiraft.raft import MessageType as MT
from tests.raft.network import Network

ELECTION_TICK = 10


def test_isolated_leader_steps_down() -> None:
    net = Network((1, 2, 3), check_quorum=True)
    net.elect(1)
    net.isolate(1)
    net.tick(1, 2 * ELECTION_TICK)
    r = net.raw(1).raft
    assert (r.state, r.lead, r.term) == (StateType.FOLLOWER, NONE, 1)


def test_fresh_leader_that_hears_from_nobody_steps_down_after_one_timeout() -> None:
    net = Network((1, 2, 3), check_quorum=True)
    net.isolate(1)
    net.campaign(1)
    net.process_readies()
    for i in (2, 3):
        net.deliver(Message(MT.VOTE_RESP, to=1, frm=i, term=1))
    assert net.state(1) == StateType.LEADER
    net.tick(1, ELECTION_TICK - 1)
    assert net.state(1) == StateType.LEADER
    net.tick(1)
    assert net.state(1) == StateType.FOLLOWER


def test_leader_with_a_quorum_keeps_leading() -> None:
    net = Network((1, 2, 3, 4, 5), check_quorum=True)
    net.elect(1)
    net.partition({1, 2, 3}, {4, 5})
    net.tick_all(10 * ELECTION_TICK)
    assert net.leader() == 1
    assert net.term(1) == 1
    assert net.propose(1, b"x")
    net.stabilize()
    assert net.applied(2) == [b"x"]


def test_without_check_quorum_an_isolated_leader_stays_leader() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.isolate(1)
    net.tick(1, 10 * ELECTION_TICK)
    assert net.state(1) == StateType.LEADER


def test_follower_with_a_live_leader_ignores_vote_requests() -> None:
    net = Network((1, 2, 3), check_quorum=True)
    net.elect(1)
    net.take()
    vote = Message(MT.VOTE, to=2, frm=3, term=5, index=1, log_term=1)
    net.deliver(vote)
    net.process_readies()
    r = net.raw(2).raft
    assert (r.term, r.vote, r.lead) == (1, 1, 1)
    assert not net.take(), "not even a rejection"
    # Once an election timeout passed without hearing from the leader, it votes.
    net.isolate(2)
    net.tick(2, ELECTION_TICK)
    net.deliver(vote)
    assert (r.term, r.vote) == (5, 3)


def test_stuck_candidate_with_higher_term_is_freed() -> None:
    """A node that campaigned alone has a higher term that the others ignore (lease);
    the leader learns that term from its answer to a heartbeat, steps down, and the
    cluster converges again."""
    net = Network((1, 2, 3), check_quorum=True)
    net.elect(1)
    net.isolate(3)
    net.tick(3, 10 * ELECTION_TICK)
    stuck_term = net.term(3)
    assert net.state(3) == StateType.CANDIDATE and stuck_term > 1
    net.heal()
    net.tick_all(2)
    assert net.term(1) >= stuck_term, "the leader adopted the higher term"
    lead = net.wait_leader()
    net.tick_all(3)
    assert {net.term(i) for i in (1, 2, 3)} == {net.term(lead)}
    assert {net.raw(i).raft.lead for i in (1, 2, 3)} == {lead}


def test_minority_cannot_elect_a_leader() -> None:
    net = Network((1, 2, 3, 4, 5), check_quorum=True)
    net.elect(1)
    net.partition({1, 2, 3}, {4, 5})
    net.tick_all(10 * ELECTION_TICK)
    assert all(net.state(i) != StateType.LEADER for i in (4, 5))


def restarted_follower_asked_to_vote(hold: bool) -> tuple[Network, Message]:
    net = Network((1, 2, 3), check_quorum=True)
    net.elect(1)
    net.crash(2)
    net.nodes[2].config["hold_votes_on_start"] = hold
    net.restart(2)
    vote = Message(MT.VOTE, to=2, frm=3, term=5, index=1, log_term=1)
    return net, vote


def test_a_restarted_follower_holding_votes_waits_one_election_timeout() -> None:
    """It forgot whom it heard from: without holding its vote it could end a
    lease its earlier acknowledgements gave the leader."""
    net, vote = restarted_follower_asked_to_vote(hold=True)
    net.isolate(2)
    net.tick(2, ELECTION_TICK - 1)
    net.deliver(vote)
    assert net.raw(2).raft.vote == 1 and net.term(2) == 1
    net.tick(2)
    net.deliver(vote)
    assert (net.term(2), net.raw(2).raft.vote) == (5, 3)


def test_a_restarted_follower_without_the_hold_votes_at_once() -> None:
    net, vote = restarted_follower_asked_to_vote(hold=False)
    net.deliver(vote)
    assert (net.term(2), net.raw(2).raft.vote) == (5, 3)
