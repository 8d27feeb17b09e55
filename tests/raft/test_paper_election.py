"""Leader election, §5.2 (and the election restriction of §5.4.1) of the Raft paper."""

from __future__ import annotations

import pytest

from multiraft.raft import NONE, Entry, Message, StateType
from multiraft.raft import MessageType as MT
from tests.raft.network import Network, storage_with_log


def of_type(t: MT, frm: int | None = None):
    return lambda m: m.type == t and (frm is None or m.frm == frm)


def test_nodes_start_as_followers_in_term_zero() -> None:
    net = Network((1, 2, 3))
    for i in (1, 2, 3):
        r = net.raw(i).raft
        assert (r.state, r.term, r.vote, r.lead) == (StateType.FOLLOWER, 0, NONE, NONE)


def test_follower_campaigns_exactly_at_its_randomized_election_timeout() -> None:
    net = Network((1, 2, 3))
    r = net.raw(1).raft
    timeout = r.randomized_election_timeout
    assert 10 <= timeout < 20
    net.tick(1, timeout - 1)
    assert r.state == StateType.FOLLOWER and not net.in_flight
    net.tick(1)
    assert r.state == StateType.CANDIDATE
    assert (r.term, r.vote) == (1, 1)
    votes = net.take(of_type(MT.VOTE))
    assert sorted(m.to for m in votes) == [2, 3]
    for m in votes:
        assert (m.frm, m.term, m.index, m.log_term) == (1, 1, 0, 0)


def test_candidate_without_majority_starts_a_new_election_on_timeout() -> None:
    net = Network((1, 2, 3))
    net.isolate(1)
    net.campaign(1)
    net.stabilize()
    r = net.raw(1).raft
    assert (r.state, r.term) == (StateType.CANDIDATE, 1)
    net.tick(1, 2 * 10)  # at most 2 * election_tick after the last reset
    assert (r.state, r.term, r.vote) == (StateType.CANDIDATE, 2, 1)
    assert {m.term for m in net.sent if m.type == MT.VOTE} == {1, 2}


@pytest.mark.parametrize(
    ("size", "grants", "rejects", "expected"),
    [
        (1, 0, 0, StateType.LEADER),
        (3, 1, 0, StateType.LEADER),
        (3, 0, 1, StateType.CANDIDATE),
        (3, 0, 2, StateType.FOLLOWER),
        (5, 2, 0, StateType.LEADER),
        (5, 1, 2, StateType.CANDIDATE),
        (5, 1, 3, StateType.FOLLOWER),
        (5, 3, 1, StateType.LEADER),
    ],
)
def test_election_outcome_in_one_round(
    size: int, grants: int, rejects: int, expected: StateType
) -> None:
    """A candidate wins with votes of a majority (counting its own), loses once a
    majority rejected it, and otherwise keeps waiting."""
    net = Network(range(1, size + 1))
    net.campaign(1)
    net.process_readies()
    net.take()
    peers = list(range(2, size + 1))
    for i, voter in enumerate(peers[: grants + rejects]):
        reject = i >= grants
        net.deliver(Message(MT.VOTE_RESP, to=1, frm=voter, term=1, reject=reject))
    r = net.raw(1).raft
    assert r.state == expected
    assert r.term == 1


def test_follower_votes_for_at_most_one_candidate_per_term() -> None:
    net = Network((1, 2, 3))
    for candidate, granted in [(2, True), (3, False), (2, True)]:
        net.deliver(Message(MT.VOTE, to=1, frm=candidate, term=1))
        net.process_readies()
        (resp,) = net.take()
        assert (resp.type, resp.to, resp.reject) == (MT.VOTE_RESP, candidate, not granted)
    assert net.raw(1).raft.vote == 2
    assert net.nodes[1].storage.hard_state.vote == 2, "the vote must be persisted"


def test_vote_survives_restart() -> None:
    net = Network((1, 2, 3))
    net.deliver(Message(MT.VOTE, to=1, frm=2, term=1))
    net.process_readies()
    net.take()
    net.crash(1)
    net.restart(1)
    net.deliver(Message(MT.VOTE, to=1, frm=3, term=1))
    net.process_readies()
    (resp,) = net.take()
    assert resp.reject, "voted for 2 in term 1 before the crash"


@pytest.mark.parametrize("msg_type", [MT.APP, MT.HEARTBEAT])
@pytest.mark.parametrize("term", [1, 2])
def test_candidate_falls_back_to_follower_on_leader_of_same_or_newer_term(
    msg_type: MT, term: int
) -> None:
    net = Network((1, 2, 3))
    net.campaign(1)
    net.process_readies()
    net.take()
    net.deliver(Message(msg_type, to=1, frm=2, term=term))
    r = net.raw(1).raft
    assert (r.state, r.term, r.lead) == (StateType.FOLLOWER, term, 2)


@pytest.mark.parametrize("state", [StateType.FOLLOWER, StateType.CANDIDATE, StateType.LEADER])
@pytest.mark.parametrize("msg_type", [MT.APP, MT.HEARTBEAT, MT.VOTE])
def test_any_node_adopts_a_higher_term_and_becomes_follower(state: StateType, msg_type: MT) -> None:
    net = Network((1, 2, 3))
    if state == StateType.LEADER:
        net.elect(1)
    elif state == StateType.CANDIDATE:
        net.campaign(1)
        net.process_readies()
    net.take()
    r = net.raw(1).raft
    assert r.state == state
    new_term = r.term + 5
    net.deliver(Message(msg_type, to=1, frm=2, term=new_term, index=99, log_term=new_term))
    assert (r.state, r.term) == (StateType.FOLLOWER, new_term)
    expected_lead = NONE if msg_type == MT.VOTE else 2
    assert r.lead == expected_lead
    net.process_readies()
    assert net.nodes[1].storage.hard_state.term == new_term


def test_messages_of_a_stale_term_are_ignored() -> None:
    net = Network((1, 2, 3))
    net.elect(2)
    net.elect(3)  # term 2
    r = net.raw(1).raft
    before = (r.term, r.lead, r.raft_log.last_index(), r.raft_log.committed)
    net.take()
    stale = Message(
        MT.APP,
        to=1,
        frm=2,
        term=1,
        index=1,
        log_term=1,
        commit=2,
        entries=[Entry(1, 2, data=b"stale")],
    )
    net.deliver(stale)
    net.process_readies()
    assert (r.term, r.lead, r.raft_log.last_index(), r.raft_log.committed) == before
    assert r.raft_log.term(2) == 2, "a stale leader must not overwrite the log"
    assert not net.take(), "without check_quorum or pre_vote a stale message is just dropped"


def test_leader_sends_heartbeats_every_heartbeat_tick() -> None:
    net = Network((1, 2, 3), heartbeat_tick=2)
    net.elect(1)
    net.tick(1)
    assert not net.take(of_type(MT.HEARTBEAT))
    net.tick(1)
    beats = net.take(of_type(MT.HEARTBEAT))
    assert sorted(m.to for m in beats) == [2, 3]
    r = net.raw(1).raft
    for m in beats:
        assert m.term == r.term
        assert m.commit == min(r.prs.progress[m.to].match, r.raft_log.committed)


def test_a_live_leader_keeps_followers_from_campaigning() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.tick_all(200)
    assert net.leader() == 1
    assert {net.term(i) for i in (1, 2, 3)} == {1}


def test_election_timeouts_are_randomized_in_range_and_differ() -> None:
    net = Network((1, 2, 3, 4, 5))
    timeouts: dict[int, set[int]] = {i: set() for i in net.nodes}
    for _ in range(60):
        for i in net.nodes:
            r = net.raw(i).raft
            timeouts[i].add(r.randomized_election_timeout)
            r.become_follower(r.term + 1, NONE)  # every reset draws a new timeout
    for i, seen in timeouts.items():
        assert seen <= set(range(10, 20)), f"node {i}: {seen}"
        assert len(seen) >= 5, f"node {i} barely randomizes: {seen}"


def test_split_vote_is_resolved_by_a_later_election() -> None:
    net = Network((1, 2, 3, 4), seed=3)
    net.cut |= {(1, 4), (2, 3)}  # 3 only hears 1, 4 only hears 2
    net.campaign(1)
    net.campaign(2)
    net.stabilize()
    assert net.state(1) == net.state(2) == StateType.CANDIDATE, "each has only 2 of 4 votes"
    assert net.leader() is None
    net.heal()
    lead = net.wait_leader(max_ticks=200)
    assert net.term(lead) >= 2
    net.tick_all(5)
    assert {net.raw(i).raft.lead for i in net.nodes} == {lead}


@pytest.mark.parametrize(
    ("voter_log", "cand_index", "cand_log_term", "granted"),
    [
        ([1], 1, 1, True),  # equal
        ([1], 2, 1, True),  # longer, same last term
        ([1], 1, 2, True),  # higher last term
        ([1, 1], 1, 1, False),  # shorter
        ([2], 1, 1, False),  # lower last term
        ([2], 3, 1, False),  # lower last term beats length
        ([1, 2], 5, 1, False),
        ([1, 2], 2, 2, True),
    ],
)
def test_voter_only_grants_to_candidates_with_up_to_date_logs(
    voter_log: list[int], cand_index: int, cand_log_term: int, granted: bool
) -> None:
    """§5.4.1: a vote is denied if the voter's log is more up-to-date."""
    net = Network((1, 2, 3), storages={1: storage_with_log((1, 2, 3), voter_log)})
    term = max(voter_log) + 1
    net.deliver(Message(MT.VOTE, to=1, frm=2, term=term, index=cand_index, log_term=cand_log_term))
    net.process_readies()
    (resp,) = net.take(of_type(MT.VOTE_RESP))
    assert resp.reject == (not granted)
    assert net.raw(1).raft.vote == (2 if granted else NONE)


def test_node_with_out_of_date_log_cannot_win() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.isolate(3)
    for i in range(3):
        assert net.propose(1, b"x%d" % i)
    net.stabilize()
    assert net.applied(1) == [b"x0", b"x1", b"x2"]
    net.heal()
    for _ in range(3):  # however often it tries, with whatever term
        net.campaign(3)
        net.stabilize()
        assert net.state(3) != StateType.LEADER
    lead = net.wait_leader()
    assert lead != 3
    net.tick_all(3)
    assert net.applied(3) == [b"x0", b"x1", b"x2"]
