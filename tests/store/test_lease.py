"""Leader leases: the rules of `Lease`, and on simulated stores and clock a
leader cut off from its followers (running, or paused as by SIGSTOP) that
must not answer a read from its own state once another leader may exist."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from multiraft.errors import NotLeader
from multiraft.protocol import wire
from multiraft.store.lease import Lease, lease_duration
from multiraft.store.peer import Peer
from tests.store.simulation import START, SimClient, SimCluster, first_write, run_op

D = lease_duration(10, 0.1)


def test_duration_leaves_two_ticks_and_the_drift_margin() -> None:
    assert pytest.approx(0.8 * 0.95) == D


def test_a_confirmed_round_renews_from_its_start_not_from_its_confirmation() -> None:
    lease = Lease(D)
    assert not lease.valid(3, 100.0)
    lease.renew(3, 100.0)
    assert lease.valid(3, 100.0 + D - 0.001)
    assert not lease.valid(3, 100.0 + D), "a paused leader wakes past its lease"
    assert not lease.valid(4, 100.1), "a lease belongs to one term"
    lease.renew(3, 99.0)  # an older round cannot shorten it
    assert lease.valid(3, 100.0 + D - 0.001)


def test_a_newer_term_replaces_the_lease_and_an_older_one_is_ignored() -> None:
    lease = Lease(D)
    lease.renew(3, 100.0)
    lease.renew(5, 100.2)
    assert lease.valid(5, 100.5) and not lease.valid(3, 100.5)
    lease.renew(4, 101.0)
    assert not lease.valid(4, 101.1) and lease.term == 5


def test_committed_writes_renew_from_their_proposal_time_in_their_term() -> None:
    lease = Lease(D)
    lease.proposed(10, 3, 100.0)
    lease.proposed(11, 3, 100.3)
    lease.committed(10, 3)
    assert lease.until == pytest.approx(100.0 + D)
    lease.committed(11, 4)  # entry 11 is another term's: ours was overwritten
    assert lease.until == pytest.approx(100.0 + D)


def test_a_leader_transfer_ends_the_lease_for_the_rest_of_the_term() -> None:
    lease = Lease(D)
    lease.renew(3, 100.0)
    lease.end_term(3)
    assert not lease.valid(3, 100.1)
    lease.renew(3, 100.2)
    assert not lease.valid(3, 100.3)
    lease.renew(4, 101.0)
    assert lease.valid(4, 101.1), "a new term starts afresh"


def test_a_membership_change_ends_the_lease_until_a_later_round() -> None:
    lease = Lease(D)
    lease.renew(3, 100.0)
    lease.proposed(12, 3, 100.1)
    lease.end(100.2)
    assert not lease.valid(3, 100.3)
    lease.committed(12, 3)  # proposed before the change: acknowledged by the old quorum
    lease.renew(3, 100.15)
    assert not lease.valid(3, 100.3)
    lease.renew(3, 100.25)
    assert lease.valid(3, 100.3)


# -- on simulated stores ----------------------------------------------------


class ReplyCatcher:
    """A bare client identity: sends the frames it is given, keeps replies."""

    identity = b"catcher"

    def __init__(self) -> None:
        self.replies: list[wire.Reply] = []

    def next_event(self) -> float:
        return math.inf

    def on_time(self, now: float) -> None:
        pass

    def on_frame(self, frame: bytes) -> None:
        msg = wire.decode_client_frame(frame)
        self.replies.extend(msg.replies if isinstance(msg, wire.ReplyBatch) else [msg])


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SimCluster]:
    c = SimCluster(tmp_path, seed=7, stores=3, replicas=3)
    try:
        yield c
    finally:
        c.close()


def get_from(cluster: SimCluster, store_id: int, key: bytes) -> wire.Reply:
    """A get sent to `store_id` as the leader of region 1, outside any client
    session, answered within 10 s of cluster time."""
    catcher = ReplyCatcher()
    cluster.clients.append(catcher)  # type: ignore[arg-type]
    region = cluster.stores[store_id].store.peers[1].region  # type: ignore[union-attr]
    args = {"region": 1, "epoch": region.epoch.to_wire(), "key": key}
    frame = wire.encode_request(wire.Request(1, "get", args))
    cluster.request(catcher, store_id, frame)  # type: ignore[arg-type]
    for _ in range(100):
        cluster.run(0.1)
        if catcher.replies:
            break
    cluster.clients.remove(catcher)  # type: ignore[arg-type]
    [reply] = catcher.replies
    return reply


def leader_peer(cluster: SimCluster, store_id: int) -> Peer:
    store = cluster.stores[store_id].store
    assert store is not None
    return store.peers[1]


def term_of(peer: Peer) -> int:
    return peer.raw_node.basic_status().hard_state.term


def start(cluster: SimCluster) -> tuple[SimClient, int]:
    """`first_write`, and the write renewed the leader's lease."""
    client, leader = first_write(cluster)
    peer = leader_peer(cluster, leader)
    assert peer.lease.valid(term_of(peer), cluster.now)
    return client, leader


def cut_off(cluster: SimCluster, store_id: int) -> None:
    cluster.cut = {frozenset((store_id, o)) for o in cluster.stores if o != store_id}


@pytest.mark.parametrize("seed", range(4))
def test_no_new_leader_is_elected_before_the_old_ones_lease_runs_out(
    tmp_path: Path, seed: int
) -> None:
    cluster = SimCluster(tmp_path, seed=seed, stores=3, replicas=3)
    try:
        client, old = start(cluster)
        client.queue.append(("put", b"k", b"v2"))
        cluster.run(0.05)  # the write renews the lease just before the cut
        cut_off(cluster, old)
        lease, old_term = leader_peer(cluster, old).lease, term_of(leader_peer(cluster, old))
        for _ in range(500):
            cluster.run(0.01)
            new = [
                sid
                for sid in cluster.stores
                if sid != old
                and leader_peer(cluster, sid).is_leader()
                and term_of(leader_peer(cluster, sid)) > old_term
            ]
            if new:
                break
        assert new, "the others elected no leader in 5 s"
        assert lease.term == old_term
        assert lease.until <= cluster.now, (
            f"lease until {lease.until - START:.3f}, new leader at {cluster.now - START:.3f}"
        )
    finally:
        cluster.close()


def test_a_paused_leader_serves_no_stale_read(cluster: SimCluster) -> None:
    """SIGSTOP the leader (and cut it off) for longer than its lease, not
    long enough for its check-quorum to run: another leader takes writes
    meanwhile, and a read waiting in the old leader's socket is answered,
    if at all, with the new value."""
    client, old = start(cluster)
    cut_off(cluster, old)
    cluster.pause(old, 4.0)
    client.routes.set_leader(1, None)
    run_op(cluster, client, "put", b"k", b"v2")  # through a new leader
    assert cluster.stores[old].paused_until > cluster.now, "the write took too long"
    reply = get_from(cluster, old, b"k")
    if reply.ok:
        assert reply.result == b"v2", "a deposed leader answered from its stale state"
    else:
        assert isinstance(wire.error_from_wire(reply.result), NotLeader)


@pytest.mark.parametrize("lease_reads", [True, False])
def test_a_read_under_the_lease_needs_no_read_index(tmp_path: Path, lease_reads: bool) -> None:
    cluster = SimCluster(tmp_path, seed=3, stores=3, replicas=3)
    for s in cluster.stores.values():
        s.config.lease_reads = lease_reads
    try:
        client, leader = start(cluster)
        peer = leader_peer(cluster, leader)
        before = peer.read_seq
        assert run_op(cluster, client, "get", b"k", None) == b"v1"
        assert (peer.read_seq == before) == lease_reads
    finally:
        cluster.close()


def test_a_transfer_ends_the_lease_and_a_follower_forwards_none(cluster: SimCluster) -> None:
    client, leader = start(cluster)
    follower = next(s for s in cluster.stores if s != leader)
    f_peer, l_peer = leader_peer(cluster, follower), leader_peer(cluster, leader)
    term = term_of(l_peer)
    f_peer.transfer_leader(f_peer.peer_id)  # not the leader: no forwarded transfer
    f_store = cluster.stores[follower].store
    assert f_store is not None
    f_store.ctx.touch(f_peer)
    cluster.run(0.5)
    assert cluster.leader_of(1) == leader and term_of(l_peer) == term
    assert l_peer.lease.valid(term, cluster.now)
    l_peer.transfer_leader(f_peer.peer_id)
    assert not l_peer.lease.valid(term, cluster.now)
    run_op(cluster, client, "put", b"k", b"v2")  # renewals in that term do not count
    assert not l_peer.lease.valid(term, cluster.now)
