"""Quiet regions, on the in-process cluster (`tests.store.simulation`):
idle regions stop ticking and heartbeating, anything they must do wakes
them, and the loss of a leader's store wakes its followers to elect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.simulation import SimClient, SimCluster


def quiet_everywhere(cluster: SimCluster) -> bool:
    return all(
        peer.quiet for s in cluster.stores.values() if s.store for peer in s.store.peers.values()
    )


def replicas_of(cluster: SimCluster, region_id: int) -> list:
    return [
        s.store.peers[region_id]
        for s in cluster.stores.values()
        if s.store and region_id in s.store.peers
    ]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SimCluster]:
    c = SimCluster(tmp_path, seed=11, stores=3)
    try:
        yield c
    finally:
        c.close()


def run_ops(cluster: SimCluster, *ops: tuple[str, bytes, object], seconds: float = 5.0) -> list:
    """Run `ops` through one client, one after the other; their results."""
    client = SimClient(cluster, len(cluster.clients), record=True)
    client.running = False
    client.queue = list(ops)
    cluster.clients.append(client)
    cluster.run(seconds)
    assert client.op is None and not client.queue, "the operations did not finish"
    return client.history


def test_idle_regions_go_quiet_everywhere_and_stop_heartbeating(cluster: SimCluster) -> None:
    run_ops(cluster, ("split", b"m", None), ("put", b"a", b"1"), ("put", b"z", b"2"))
    cluster.run(3.0)
    assert quiet_everywhere(cluster)
    for s in cluster.stores.values():
        assert s.store is not None and not s.store.ctx.awake
    frames_before = cluster.frames
    cluster.run(5.0)
    # Only the stores' pings, one every other tick (a gossip round takes the
    # place of one): 3 stores x 2 others x 5 a second, for 5 s.
    assert cluster.frames - frames_before <= 3 * 2 * 5 * 5


@pytest.mark.parametrize(
    "op",
    [
        ("put", b"k", b"v"),
        ("get", b"k", None),
        ("delete", b"k", None),
        ("cas", b"k", (None, b"x")),
        ("split", b"q", None),
        ("transfer_leader", b"k", 2),
        ("change_peer", b"k", (3, "remove")),
    ],
)
def test_a_quiet_region_wakes_for_each_kind_of_request(
    cluster: SimCluster, op: tuple[str, bytes, object]
) -> None:
    cluster.run(3.0)
    assert quiet_everywhere(cluster)
    admin = SimClient(cluster, 50, record=False)
    admin.running = False
    admin.queue = [op]
    cluster.clients.append(admin)
    cluster.run(5.0)
    assert admin.op is None and not admin.queue
    if op[0] in ("split", "transfer_leader", "change_peer"):
        [(_, result)] = admin.done
        assert not isinstance(result, Exception), result
    cluster.run(5.0)
    assert quiet_everywhere(cluster), "and it goes quiet again"


def test_the_followers_of_a_dead_leaders_quiet_regions_elect_another(cluster: SimCluster) -> None:
    run_ops(cluster, ("split", b"f", None), ("split", b"p", None))
    cluster.run(3.0)
    assert quiet_everywhere(cluster)
    leaders = {rid: cluster.leader_of(rid) for rid in cluster.stores[1].store.peers}
    victim = leaders[1]
    cluster.crash(victim, restart_in=60.0)
    killed_at = cluster.now
    cluster.run(6.0)
    for rid in leaders:
        leader = cluster.leader_of(rid)
        assert leader is not None and leader != victim, (rid, leader)
    history = run_ops(cluster, ("put", b"a", b"1"), ("put", b"g", b"2"), ("put", b"z", b"3"))
    assert [op.end < cluster.now for op in history] == [True] * 3
    assert cluster.now - killed_at < 20.0


def test_a_dead_store_wakes_only_the_regions_it_led(cluster: SimCluster) -> None:
    """Its followers elect; the regions where it held a follower stay quiet
    on the other stores (their leaders lose nothing by not hearing it); the
    new leaders go quiet again without waiting for its replicas."""
    run_ops(cluster, *[("split", k, None) for k in (b"c", b"f", b"j", b"m", b"p", b"t")])
    cluster.run(3.0)
    assert quiet_everywhere(cluster)
    leaders = {rid: cluster.leader_of(rid) for rid in cluster.stores[1].store.peers}
    victim = max(set(leaders.values()), key=list(leaders.values()).count)
    led = {rid for rid, leader in leaders.items() if leader == victim}
    assert led and len(led) < len(leaders)
    woken: set[int] = set()
    cluster.crash(victim, restart_in=60.0)
    killed_at = cluster.now
    elected_at: dict[int, float] = {}
    for _ in range(60):
        cluster.run(0.1)
        for s in cluster.stores.values():
            if s.store is not None and s.store.ctx.store_id != victim:
                woken |= s.store.ctx.awake
        for rid in led - elected_at.keys():
            if cluster.leader_of(rid) not in (None, victim):
                elected_at[rid] = cluster.now - killed_at
    assert woken == led
    for rid in leaders:
        assert cluster.leader_of(rid) not in (None, victim), rid
    # Noticed after an election timeout (1 s) of silence; then at most one
    # more (the ticks missed while quiet are credited), and an election.
    assert max(elected_at.values()) < 2.5, elected_at
    # The new leaders go quiet again without the dead store's replicas.
    cluster.run(3.0)
    survivors = [s.store for sid, s in cluster.stores.items() if sid != victim]
    assert all(store is not None and not store.ctx.awake for store in survivors)


def test_a_follower_that_missed_writes_catches_up_when_woken(cluster: SimCluster) -> None:
    cluster.run(3.0)
    follower = next(sid for sid in cluster.stores if sid != cluster.leader_of(1))
    cluster.crash(follower, restart_in=2.0)
    run_ops(cluster, *[("put", b"k%d" % i, b"v") for i in range(20)])
    cluster.run(6.0)
    [applied] = {p.applied for p in replicas_of(cluster, 1)}
    assert applied > 20
    assert quiet_everywhere(cluster)


def test_without_hibernation_nothing_goes_quiet(tmp_path: Path) -> None:
    c = SimCluster(tmp_path, seed=3, stores=3, hibernate=False)
    try:
        c.run(5.0)
        assert not any(
            p.quiet for s in c.stores.values() if s.store for p in s.store.peers.values()
        )
    finally:
        c.close()


def test_a_lone_replica_goes_quiet_without_anyone_to_tell(tmp_path: Path) -> None:
    c = SimCluster(tmp_path, seed=5, stores=1, replicas=1)
    try:
        c.run(3.0)
        assert quiet_everywhere(c)
    finally:
        c.close()
