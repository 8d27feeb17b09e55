"""Leadership transfer (Raft thesis §3.10): MsgTransferLeader, catch-up, MsgTimeoutNow."""

from __future__ import annotations

from multiraft.raft import NONE, ConfChange, ConfChangeType, ConfState, MemoryStorage, StateType
from multiraft.raft import MessageType as MT
from tests.raft.network import Network

ELECTION_TICK = 10


def test_transfer_to_an_up_to_date_follower() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.raw(1).transfer_leader(2)
    net.stabilize()
    assert [m.to for m in net.sent if m.type == MT.TIMEOUT_NOW] == [2]
    assert net.leader() == 2 and net.term(2) == 2
    r = net.raw(1).raft
    assert (r.state, r.lead, r.lead_transferee) == (StateType.FOLLOWER, 2, NONE)


def test_transfer_to_a_lagging_follower_catches_it_up_first() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.isolate(3)
    for i in range(5):
        assert net.propose(1, b"x%d" % i)
    net.stabilize()
    net.heal()
    net.raw(1).transfer_leader(3)
    net.stabilize()
    assert net.leader() == 3
    assert net.applied(3) == [b"x%d" % i for i in range(5)]
    timeout_now = [i for i, m in enumerate(net.sent) if m.type == MT.TIMEOUT_NOW]
    last_app = max(i for i, m in enumerate(net.sent) if m.type == MT.APP and m.to == 3)
    assert len(timeout_now) == 1 and timeout_now[0] > last_app


def test_proposals_are_dropped_while_transferring() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.isolate(3)
    net.raw(1).transfer_leader(3)
    net.stabilize()
    assert net.raw(1).raft.lead_transferee == 3
    assert not net.propose(1, b"x")


def test_transfer_is_aborted_after_an_election_timeout() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.isolate(3)
    net.raw(1).transfer_leader(3)
    net.tick(1, ELECTION_TICK - 1)
    assert net.raw(1).raft.lead_transferee == 3
    net.tick(1)
    r = net.raw(1).raft
    assert (r.state, r.lead_transferee) == (StateType.LEADER, NONE)
    assert net.propose(1, b"x")


def test_transfer_to_self_unknown_node_or_learner_is_ignored() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    assert net.propose_conf_change(1, ConfChange(ConfChangeType.ADD_LEARNER_NODE, 4))
    net.stabilize()
    net.add_node(4, MemoryStorage(ConfState((1, 2, 3), (4,))))
    for target in (1, 9, 4):
        net.raw(1).transfer_leader(target)
        net.stabilize()
        assert net.raw(1).raft.lead_transferee == NONE
        assert net.leader() == 1 and net.term(1) == 1
    assert not [m for m in net.sent if m.type == MT.TIMEOUT_NOW]


def test_new_transfer_target_replaces_a_pending_one() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.isolate(3)
    net.raw(1).transfer_leader(3)
    net.stabilize()
    net.raw(1).transfer_leader(2)
    net.stabilize()
    assert net.leader() == 2


def test_transfer_requested_at_a_follower_is_forwarded_to_the_leader() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.raw(2).transfer_leader(3)
    net.stabilize()
    assert net.leader() == 3


def test_transfer_bypasses_the_check_quorum_lease() -> None:
    net = Network((1, 2, 3), check_quorum=True)
    net.elect(1)
    net.raw(1).transfer_leader(2)
    net.stabilize()
    assert net.leader() == 2
    assert net.term(2) == 2


def test_transfer_with_pre_vote_campaigns_directly() -> None:
    net = Network((1, 2, 3), pre_vote=True)
    net.elect(1)
    net.raw(1).transfer_leader(3)
    net.stabilize()
    assert net.leader() == 3 and net.term(3) == 2
    assert not [m for m in net.sent if m.type == MT.PRE_VOTE and m.frm == 3]
