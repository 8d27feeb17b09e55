"""Membership changes, §6 of the Raft paper (one change at a time, as etcd-raft):
adding and removing voters and learners, and removing the leader."""

from __future__ import annotations

from multiraft.raft import (
    ConfChange,
    ConfChangeType,
    ConfState,
    EntryType,
    MemoryStorage,
    Message,
    StateType,
    StepPeerNotFound,
)
from multiraft.raft import MessageType as MT
from tests.raft.network import Network

ADD = ConfChangeType.ADD_NODE
REMOVE = ConfChangeType.REMOVE_NODE
ADD_LEARNER = ConfChangeType.ADD_LEARNER_NODE


def change(net: Network, leader: int, cc_type: ConfChangeType, node_id: int) -> None:
    assert net.propose_conf_change(leader, ConfChange(cc_type, node_id))
    net.stabilize()


def test_conf_change_entry_carries_the_encoded_change() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    cc = ConfChange(ADD, 4, b"ctx")
    assert net.propose_conf_change(1, cc)
    last = net.raw(1).raft.raft_log.all_entries()[-1]
    assert last.type == EntryType.CONF_CHANGE
    assert ConfChange.decode(last.data) == cc


def test_added_voter_joins_by_snapshot_and_counts_for_the_quorum() -> None:
    net = Network((1, 2, 3), boot_index=5)
    net.elect(1)
    assert net.propose(1, b"before")
    change(net, 1, ADD, 4)
    for i in (1, 2, 3):
        assert net.nodes[i].sm.conf_state == ConfState((1, 2, 3, 4))
        assert net.raw(i).raft.prs.voters == {1, 2, 3, 4}
    net.compact(1)  # the leader's snapshot now includes node 4
    net.add_node(4)  # with an empty storage
    net.tick_all(3)
    assert any(m.type == MT.SNAP and m.to == 4 for m in net.sent)
    assert net.applied(4) == [b"before"]
    assert net.raw(4).raft.prs.voters == {1, 2, 3, 4}
    # The quorum is now 3 of 4: with nodes 3 and 4 down nothing commits...
    net.crash(3)
    net.crash(4)
    assert net.propose(1, b"x")
    net.tick_all(5)
    assert net.applied(1) == [b"before"]
    # ... and node 4's acknowledgement is what makes it commit.
    net.restart(4)
    net.tick_all(3)
    assert net.applied(1) == net.applied(4) == [b"before", b"x"]


def test_removing_a_voter_shrinks_the_quorum_and_commits_pending_entries() -> None:
    net = Network((1, 2))
    net.elect(1)

    def hide_d_from_2(m: Message) -> bool:
        if m.type == MT.APP and m.to == 2:
            m.entries = [e for e in m.entries if e.data != b"d"]
        return True

    net.filters.append(hide_d_from_2)
    assert net.propose_conf_change(1, ConfChange(REMOVE, 2))
    assert net.propose(1, b"d")
    net.stabilize()
    assert net.raw(1).raft.prs.voters == {1}
    assert net.applied(1) == [b"d"], "1 is a quorum of {1} on its own"
    assert net.state(1) == StateType.LEADER
    assert b"d" not in [e.data for e in net.raw(2).raft.raft_log.all_entries()]


def test_removed_voter_that_applied_its_removal_never_campaigns() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    change(net, 1, REMOVE, 3)
    assert net.nodes[3].sm.conf_state == ConfState((1, 2))
    net.isolate(3)
    net.tick(3, 100)
    net.campaign(3)
    net.process_readies()
    assert net.state(3) == StateType.FOLLOWER
    assert not [m for m in net.sent if m.frm == 3 and m.type in (MT.VOTE, MT.PRE_VOTE)]


def test_removed_leader_steps_down_and_the_rest_elect_a_new_one() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    change(net, 1, REMOVE, 1)
    assert net.state(1) == StateType.FOLLOWER
    for i in (2, 3):
        assert net.raw(i).raft.prs.voters == {2, 3}
    assert not net.propose(1, b"x"), "no leader to forward to"
    net.remove_node(1)
    lead = net.wait_leader()
    assert lead in (2, 3)
    assert net.propose(lead, b"y")
    net.stabilize()
    assert net.applied(2) == net.applied(3) == [b"y"]


def start_with_learner(net: Network) -> None:
    net.elect(1)
    change(net, 1, ADD_LEARNER, 4)
    net.add_node(4, MemoryStorage(ConfState((1, 2, 3), (4,))))
    net.tick_all(2)


def test_learner_receives_and_applies_entries() -> None:
    net = Network((1, 2, 3))
    start_with_learner(net)
    assert net.propose(1, b"x")
    net.stabilize()
    assert net.applied(4) == [b"x"]
    r = net.raw(4).raft
    assert r.is_learner and r.prs.learners == {4} and r.prs.voters == {1, 2, 3}


def test_learner_never_campaigns() -> None:
    net = Network((1, 2, 3))
    start_with_learner(net)
    net.isolate(4)
    term = net.term(4)
    net.tick(4, 100)
    net.campaign(4)
    net.process_readies()
    assert (net.state(4), net.term(4)) == (StateType.FOLLOWER, term)
    assert not [m for m in net.sent if m.frm == 4 and m.type in (MT.VOTE, MT.PRE_VOTE)]


def test_learner_does_not_count_for_commit() -> None:
    net = Network((1, 2, 3))
    start_with_learner(net)
    net.crash(2)
    net.crash(3)
    assert net.propose(1, b"x")
    net.tick_all(5)
    assert b"x" in [e.data for e in net.raw(4).raft.raft_log.all_entries()]
    assert net.applied(1) == [], "leader + learner is not a quorum of 3 voters"


def test_learner_is_not_part_of_the_commit_quorum() -> None:
    net = Network((1, 2), learners=(3,))
    net.elect(1)
    net.crash(2)
    assert net.propose(1, b"x")
    net.tick_all(5)
    assert net.raw(1).raft.prs.progress[3].match == 2, "the learner has the entry"
    assert net.applied(1) == [], "leader + learner is not a majority of voters {1, 2}"
    net.restart(2)
    net.tick_all(3)
    assert net.applied(1) == net.applied(3) == [b"x"]


def test_learner_vote_is_neither_requested_nor_counted() -> None:
    net = Network((1, 2, 3))
    start_with_learner(net)
    net.take()
    net.campaign(2)
    net.process_readies()
    votes = net.take(lambda m: m.type == MT.VOTE)
    assert sorted(m.to for m in votes) == [1, 3]
    term = net.term(2)
    net.deliver(Message(MT.VOTE_RESP, to=2, frm=4, term=term))
    assert net.state(2) == StateType.CANDIDATE


def test_promoted_learner_becomes_a_voter_that_can_lead() -> None:
    net = Network((1, 2, 3))
    start_with_learner(net)
    change(net, 1, ADD, 4)
    r = net.raw(4).raft
    assert not r.is_learner and r.prs.voters == {1, 2, 3, 4}
    assert net.raw(1).raft.prs.voters == {1, 2, 3, 4}
    net.elect(4)


def test_only_one_conf_change_may_be_pending() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.filters.append(lambda m: m.type != MT.APP_RESP)  # nothing commits
    assert net.propose_conf_change(1, ConfChange(ADD_LEARNER, 4))
    assert net.propose_conf_change(1, ConfChange(ADD_LEARNER, 5))
    first, second = net.raw(1).raft.raft_log.all_entries()[-2:]
    assert first.type == EntryType.CONF_CHANGE
    assert (second.type, second.data) == (EntryType.NORMAL, b""), "the second became a no-op"
    net.filters.clear()
    net.tick_all(2)
    assert net.raw(1).raft.prs.learners == {4}
    change(net, 1, ADD_LEARNER, 5)  # accepted now that the first one is applied
    assert net.raw(1).raft.prs.learners == {4, 5}


def test_new_leader_blocks_conf_changes_until_it_applied_its_log() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.filters.append(lambda m: m.type != MT.APP_RESP)  # replicated, never committed
    assert net.propose_conf_change(1, ConfChange(ADD_LEARNER, 4))
    net.stabilize()
    net.elect(2)
    cc_index = net.raw(2).raft.raft_log.last_index() - 1
    assert net.raw(2).raft.pending_conf_index >= cc_index
    assert net.propose_conf_change(2, ConfChange(ADD_LEARNER, 5))
    last = net.raw(2).raft.raft_log.all_entries()[-1]
    assert (last.type, last.data) == (EntryType.NORMAL, b"")
    net.filters.clear()
    net.tick_all(2)
    assert net.raw(2).raft.prs.learners == {4}


def test_response_from_unknown_node_is_refused() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    assert isinstance(
        net.raw(1).step(Message(MT.APP_RESP, to=1, frm=9, term=1, index=1)), StepPeerNotFound
    )
