"""The store's message savers: a commit index that rides on the next append
or heartbeat (`broadcast_commit=False`), and heartbeat rounds that skip
followers an append just reached (`beat_idle_followers_only`)."""

from __future__ import annotations

from multiraft.raft import MessageType as MT
from tests.raft.network import Network


def sent_since(net: Network, mark: int, t: MT) -> list[tuple[int, int]]:
    """(to, commit) of every message of type `t` sent after `mark`."""
    return [(m.to, m.commit) for m in net.sent[mark:] if m.type == t]


def test_commit_rides_on_the_next_heartbeat_instead_of_an_empty_append() -> None:
    net = Network((1, 2, 3), broadcast_commit=False)
    net.elect(1)
    mark = len(net.sent)
    assert net.propose(1, b"x")
    net.stabilize()
    leader = net.raw(1).raft
    assert leader.raft_log.committed == 2
    assert net.applied(1) == [b"x"]
    # One append each way per follower: no empty append carried the commit.
    assert sorted(sent_since(net, mark, MT.APP)) == [(2, 1), (3, 1)]
    assert net.raw(2).raft.raft_log.committed == 1
    net.tick(1)  # heartbeat_tick is 1
    net.stabilize()
    assert net.raw(2).raft.raft_log.committed == 2
    assert net.applied(2) == net.applied(3) == [b"x"]


def test_etcd_default_broadcasts_the_commit_at_once() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    mark = len(net.sent)
    assert net.propose(1, b"x")
    net.stabilize()
    empty_commits = [c for to, c in sent_since(net, mark, MT.APP) if c == 2]
    assert len(empty_commits) == 2
    assert net.applied(2) == [b"x"]


def test_heartbeat_round_skips_a_follower_an_append_just_reached() -> None:
    net = Network((1, 2, 3), beat_idle_followers_only=True)
    net.elect(1)
    net.tick(1)  # a round after the election's appends: both beaten
    net.stabilize()
    net.isolate(3)
    assert net.propose(1, b"x")  # reaches 2; 3's append is lost, but sent
    net.stabilize()
    net.heal()
    mark = len(net.sent)
    net.tick(1)
    assert [to for to, _ in sent_since(net, mark, MT.HEARTBEAT)] == []
    net.stabilize()
    mark = len(net.sent)
    net.tick(1)  # no append since the last round: both beaten again
    assert sorted(to for to, _ in sent_since(net, mark, MT.HEARTBEAT)) == [2, 3]
    net.stabilize()
    # The heartbeat's answer shows 3 behind: the lost entry is sent again.
    assert net.applied(3) == [b"x"]


def test_read_index_round_beats_every_follower() -> None:
    net = Network((1, 2, 3), beat_idle_followers_only=True)
    net.elect(1)
    assert net.propose(1, b"x")
    net.stabilize()
    mark = len(net.sent)
    net.raw(1).read_index(b"ctx")
    net.process_readies()
    assert sorted(to for to, _ in sent_since(net, mark, MT.HEARTBEAT)) == [2, 3]
    net.stabilize()
    assert [rs.request_ctx for rs in net.nodes[1].read_states] == [b"ctx"]


def test_a_skipped_follower_never_times_out_under_steady_writes() -> None:
    net = Network((1, 2, 3), beat_idle_followers_only=True, broadcast_commit=False)
    net.elect(1)
    for i in range(40):
        assert net.propose(1, b"w%d" % i)
        net.tick_all()
    assert net.leader() == 1 and net.term(1) == net.term(2) == net.term(3)
    net.tick_all(2)
    assert net.applied(2) == net.applied(3) == net.applied(1)


def test_a_leader_broadcasts_the_commit_of_an_entry_followers_need_at_once() -> None:
    net = Network((1, 2, 3), broadcast_commit=False)
    net.elect(1)
    assert net.propose(1, b"split")
    net.raw(1).broadcast_commit_of(net.raw(1).raft.raft_log.last_index())
    net.stabilize()
    assert net.applied(2) == net.applied(3) == [b"split"]
    assert net.propose(1, b"write")  # later entries go back to riding along
    net.stabilize()
    assert net.applied(2) == [b"split"]
