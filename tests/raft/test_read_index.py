"""ReadIndex (Raft thesis §6.4): linearizable reads without writing to the log,
confirmed by a heartbeat quorum (SAFE) or by the leader's lease (LEASE_BASED)."""

from __future__ import annotations

from multiraft.raft import MessageType as MT
from multiraft.raft import ReadOnlyOption, ReadState
from tests.raft.network import Network


def leader_with_data(size: int = 3, **config) -> Network:
    net = Network(range(1, size + 1), **config)
    net.elect(1)
    for i in range(3):
        assert net.propose(1, b"x%d" % i)
    net.stabilize()
    assert net.raw(1).raft.raft_log.committed == 4
    return net


def test_safe_read_waits_for_a_heartbeat_quorum() -> None:
    net = leader_with_data()
    net.isolate(1)
    net.raw(1).read_index(b"ctx")
    net.stabilize()
    net.tick_all(3)
    assert net.nodes[1].read_states == [], "no follower confirmed the leadership yet"
    net.heal()
    net.tick_all(1)
    assert net.nodes[1].read_states == [ReadState(4, b"ctx")]
    assert any(m.type == MT.HEARTBEAT and m.context == b"ctx" for m in net.sent)


def test_safe_read_needs_a_majority_not_just_one_follower() -> None:
    net = leader_with_data(size=5)
    net.partition({1, 2}, {3, 4, 5})
    net.raw(1).read_index(b"ctx")
    net.tick_all(3)
    assert net.nodes[1].read_states == []
    net.partition({1, 2, 3}, {4, 5})
    net.tick_all(1)
    assert net.nodes[1].read_states == [ReadState(4, b"ctx")]


def test_read_requested_at_a_follower_is_answered_by_the_leader() -> None:
    net = leader_with_data()
    net.raw(2).read_index(b"from-2")
    net.stabilize()
    assert net.nodes[2].read_states == [ReadState(4, b"from-2")]
    assert net.nodes[1].read_states == []
    assert [m.type for m in net.sent if m.type == MT.READ_INDEX] == [MT.READ_INDEX]
    assert [(m.to, m.index) for m in net.sent if m.type == MT.READ_INDEX_RESP] == [(2, 4)]


def test_several_reads_are_all_answered_in_order() -> None:
    net = leader_with_data()
    for ctx in (b"a", b"b", b"c"):
        net.raw(1).read_index(ctx)
    net.stabilize()
    assert [rs.request_ctx for rs in net.nodes[1].read_states] == [b"a", b"b", b"c"]
    assert {rs.index for rs in net.nodes[1].read_states} == {4}


def test_read_index_covers_every_acknowledged_write() -> None:
    net = leader_with_data()
    for i in range(5):
        assert net.propose(2, b"y%d" % i)
        net.stabilize()
        net.raw(3).read_index(b"r%d" % i)
        net.stabilize()
        rs = net.nodes[3].read_states[-1]
        assert rs.request_ctx == b"r%d" % i
        assert rs.index >= net.raw(1).raft.raft_log.committed == 5 + i


def test_new_leader_defers_reads_until_it_committed_an_entry_of_its_term() -> None:
    net = leader_with_data()

    def hold(m):
        return not (m.type == MT.APP_RESP and m.to == 2)

    net.filters.append(hold)
    net.elect(2)
    assert net.raw(2).raft.raft_log.committed == 4, "its empty entry (5) is not committed"
    net.raw(2).read_index(b"early")
    net.raw(3).read_index(b"forwarded")
    net.stabilize()
    assert net.nodes[2].read_states == [] and net.nodes[3].read_states == []
    net.filters.remove(hold)
    net.tick_all(2)
    assert net.raw(2).raft.raft_log.committed == 5
    assert net.nodes[2].read_states == [ReadState(5, b"early")]
    assert net.nodes[3].read_states == [ReadState(5, b"forwarded")]


def test_single_voter_answers_reads_at_once() -> None:
    net = Network((1,))
    net.elect(1)
    net.raw(1).read_index(b"solo")
    net.process_readies()
    assert net.nodes[1].read_states == [ReadState(1, b"solo")]


def test_lease_based_read_is_answered_without_contacting_followers() -> None:
    net = leader_with_data(check_quorum=True, read_only_option=ReadOnlyOption.LEASE_BASED)
    net.isolate(1)
    sent = len(net.sent)
    net.raw(1).read_index(b"lease")
    net.process_readies()
    assert net.nodes[1].read_states == [ReadState(4, b"lease")]
    assert net.sent[sent:] == []


def test_lease_based_read_from_follower() -> None:
    net = leader_with_data(check_quorum=True, read_only_option=ReadOnlyOption.LEASE_BASED)
    net.raw(3).read_index(b"f")
    net.stabilize()
    assert net.nodes[3].read_states == [ReadState(4, b"f")]
    assert not [m for m in net.sent if m.type == MT.HEARTBEAT and m.context == b"f"]


def test_read_at_a_node_without_leader_goes_nowhere() -> None:
    net = Network((1, 2, 3))
    net.raw(2).read_index(b"lost")
    net.stabilize()
    assert net.sent == [] and net.nodes[2].read_states == []
