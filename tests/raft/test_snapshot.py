"""Log compaction and snapshots, §7 of the Raft paper."""

from __future__ import annotations

from multiraft.raft import Message, Snapshot, SnapshotMetadata, SnapshotStatus
from multiraft.raft import MessageType as MT
from multiraft.raft.tracker.progress import ProgressState
from tests.raft.network import Network, StateMachine

DATA = [b"x%d" % i for i in range(10)]


def leader_with_lagging_follower(**config) -> Network:
    """Leader 1 has applied DATA and compacted its log; node 3 has seen none of it."""
    net = Network((1, 2, 3), **config)
    net.elect(1)
    net.isolate(3)
    for d in DATA:
        assert net.propose(1, d)
    net.stabilize()
    net.compact(1)
    assert net.nodes[1].storage.first_index() == net.nodes[1].sm.applied + 1
    net.heal()
    return net


def test_compacted_nodes_keep_working_and_restart_from_their_snapshot() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    for d in DATA[:5]:
        assert net.propose(1, d)
    net.stabilize()
    for i in (1, 2, 3):
        net.compact(i, keep=2)
        storage = net.nodes[i].storage
        assert storage.snapshot().metadata.index == net.nodes[i].sm.applied == 6
        assert storage.first_index() == 5
    for d in DATA[5:]:
        assert net.propose(1, d)
    net.stabilize()
    for i in (1, 2, 3):
        net.crash(i)
    for i in (1, 2, 3):
        net.restart(i)
        assert net.raw(i).raft.raft_log.applied == 11
    lead = net.wait_leader()
    assert net.propose(lead, b"more")
    net.stabilize()
    for i in (1, 2, 3):
        assert net.applied(i) == DATA + [b"more"]


def test_lagging_follower_catches_up_with_the_leaders_snapshot() -> None:
    net = leader_with_lagging_follower()
    net.tick_all(3)
    (snap,) = [m for m in net.sent if m.type == MT.SNAP]
    assert snap.to == 3
    assert snap.snapshot.metadata.index == net.nodes[1].storage.snapshot().metadata.index
    assert net.nodes[3].storage.snapshot().metadata == snap.snapshot.metadata
    assert net.applied(3) == DATA
    pr = net.raw(1).raft.prs.progress[3]
    assert pr.state == ProgressState.REPLICATE and pr.match == net.raw(1).raft.raft_log.last_index()
    # After the snapshot, replication goes on with ordinary appends.
    assert net.propose(1, b"after")
    net.stabilize()
    assert net.applied(3) == DATA + [b"after"]
    assert len([m for m in net.sent if m.type == MT.SNAP]) == 1


def test_failed_snapshot_is_sent_again_after_report_snapshot_failure() -> None:
    net = leader_with_lagging_follower()
    net.auto_report_snapshot = False
    snaps = net.intercept(lambda m: m.type == MT.SNAP)
    net.tick_all(1)
    assert len(snaps) == 1
    leader = net.raw(1)
    assert leader.raft.prs.progress[3].state == ProgressState.SNAPSHOT
    sent_before = len(net.sent)
    net.tick_all(5)
    to_3 = [m.type for m in net.sent[sent_before:] if m.to == 3]
    assert set(to_3) == {MT.HEARTBEAT}, "nothing but heartbeats while a snapshot is in flight"
    leader.report_snapshot(3, SnapshotStatus.FAILURE)
    assert leader.raft.prs.progress[3].state == ProgressState.PROBE
    net.tick_all(2)
    assert len(snaps) == 2, "the leader must retry the snapshot"
    net.deliver(snaps[-1])
    net.stabilize()
    assert net.applied(3) == DATA
    assert leader.raft.prs.progress[3].state == ProgressState.REPLICATE


def test_snapshot_finish_report_resumes_replication() -> None:
    net = leader_with_lagging_follower()
    net.auto_report_snapshot = False
    snaps = net.intercept(lambda m: m.type == MT.SNAP)
    net.tick_all(1)
    net.deliver(snaps[0])  # the follower restores it; its answer is lost
    net.take()
    leader = net.raw(1)
    leader.report_snapshot(3, SnapshotStatus.FINISH)
    assert leader.raft.prs.progress[3].state == ProgressState.PROBE
    net.tick_all(3)
    assert leader.raft.prs.progress[3].state == ProgressState.REPLICATE
    assert net.applied(3) == DATA
    assert len(snaps) == 1


def test_restart_reapplies_committed_entries_after_the_snapshot() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    for d in DATA[:5]:
        assert net.propose(1, d)
    net.stabilize()
    net.compact(2)
    for d in DATA[5:]:
        assert net.propose(1, d)
    net.stabilize()
    node = net.nodes[2]
    net.crash(2)
    node.sm = StateMachine.from_snapshot(node.storage.snapshot())  # state machine not durable
    assert node.sm.data == DATA[:5]
    net.restart(2)
    net.process_readies()
    assert net.applied(2) == DATA


def test_received_snapshot_survives_restart() -> None:
    net = leader_with_lagging_follower()
    net.tick_all(3)
    net.crash(3)
    net.restart(3)
    r = net.raw(3).raft
    snap_index = net.nodes[3].storage.snapshot().metadata.index
    assert r.raft_log.first_index() == snap_index + 1
    assert r.raft_log.applied >= snap_index
    assert r.prs.voters == {1, 2, 3}
    net.tick_all(3)
    assert net.applied(3) == DATA


def test_follower_ignores_snapshot_older_than_its_commit_index() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    for d in DATA:
        assert net.propose(1, d)
    net.stabilize()
    net.take()
    committed = net.raw(2).raft.raft_log.committed
    old = Snapshot(b"", SnapshotMetadata(net.nodes[2].sm.conf_state, 3, 1))
    net.deliver(Message(MT.SNAP, to=2, frm=1, term=1, snapshot=old))
    net.process_readies()
    assert net.nodes[2].storage.snapshot().metadata.index == 0
    assert net.applied(2) == DATA
    (resp,) = net.take(lambda m: m.type == MT.APP_RESP)
    assert (resp.reject, resp.index) == (False, committed)
