"""Replica placement: the repair planner, balance moves, and when a
region counts as busy changing its replicas."""

from __future__ import annotations

from types import SimpleNamespace

from multiraft.protocol.peer_change import ADD, REMOVE
from multiraft.protocol.region import LEARNER, VOTER, Epoch, PeerMeta, Region
from multiraft.store.replicas import ReplicaScheduler, pick_balance_move, plan_repair

REGION = Region(7, b"a", b"m", Epoch(3, 5), (PeerMeta(1, 10), PeerMeta(2, 20), PeerMeta(3, 30)))


def test_plan_repair_replaces_a_dead_voter_by_adding_first() -> None:
    counts = {1: 5, 2: 5, 3: 5, 4: 1, 5: 0}
    assert plan_repair(REGION, 3, {1, 2, 4, 5}, {3}, counts, None) == (5, ADD)
    with_learner = Region(7, peers=(*REGION.peers, PeerMeta(5, 50, LEARNER)))
    assert plan_repair(with_learner, 3, {1, 2, 4, 5}, {3}, counts, None) == (5, ADD)
    four = Region(7, peers=(*REGION.peers, PeerMeta(5, 50, VOTER)))
    assert plan_repair(four, 3, {1, 2, 4, 5}, {3}, counts, None) == (3, REMOVE)


def test_plan_repair_removes_a_learner_on_a_dead_store() -> None:
    region = Region(7, peers=(*REGION.peers, PeerMeta(4, 40, LEARNER)))
    assert plan_repair(region, 3, {1, 2, 3}, {4}, {}, None) == (4, REMOVE)


def test_plan_repair_trims_only_the_store_a_move_leaves() -> None:
    four = Region(7, peers=(*REGION.peers, PeerMeta(4, 40, VOTER)))
    live = {1, 2, 3, 4}
    assert plan_repair(four, 3, live, set(), {}, None) is None  # an operator's extra replica
    assert plan_repair(four, 3, live, set(), {}, 2) == (2, REMOVE)


def test_plan_repair_waits_when_no_store_can_take_a_replica() -> None:
    assert plan_repair(REGION, 3, {1, 2}, {3}, {}, None) is None
    assert plan_repair(REGION, 3, {1, 2, 3}, set(), {}, None) is None


def test_plan_repair_drops_a_learner_whose_store_went_quiet() -> None:
    region = Region(7, peers=(*REGION.peers, PeerMeta(4, 40, LEARNER)))
    assert plan_repair(region, 3, {1, 2, 3}, set(), {}, None) == (4, REMOVE)  # not yet down


def test_balance_moves_replicas_from_crowded_to_empty_stores_only() -> None:
    region = Region(7, peers=(PeerMeta(1, 10), PeerMeta(2, 20), PeerMeta(3, 30)))
    live = {1, 2, 3, 4, 5}
    move = pick_balance_move([region], 1, live, {1: 6, 2: 6, 3: 5, 4: 0, 5: 1})
    assert move == (region, 2, 4)  # never the leader's own replica (store 1)
    assert pick_balance_move([region], 1, live, {1: 4, 2: 4, 3: 4, 4: 3, 5: 3}) is None
    assert pick_balance_move([region], 1, {1, 2, 3}, {1: 9, 2: 9, 3: 9}) is None  # no target


def test_stores_balancing_at_once_on_stale_counts_settle_without_moving_back() -> None:
    """Three stores hold 12 regions (3 replicas each); two empty stores join.
    Every round, the leader of each store picks one move from the counts of
    the round before, all at once; the moves stop, spread, and no replica
    ever comes back to a store it left."""
    regions = {
        rid: Region(rid, peers=tuple(PeerMeta(s, rid * 10 + s) for s in (1, 2, 3)))
        for rid in range(1, 13)
    }
    leader = {rid: 1 + rid % 3 for rid in regions}
    live = {1, 2, 3, 4, 5}
    left: set[tuple[int, int]] = set()
    for _round in range(30):
        counts = {s: sum(r.peer_on(s) is not None for r in regions.values()) for s in live}
        moves = []
        for me in live:
            led = [r for rid, r in regions.items() if leader[rid] == me]
            move = pick_balance_move(led, me, live, counts)
            if move is not None:
                moves.append(move)
        if not moves:
            break
        for region, src, dst in moves:
            assert (region.id, dst) not in left, "a replica moved back"
            left.add((region.id, src))
            peers = [p for p in regions[region.id].peers if p.store_id != src]
            regions[region.id] = Region(
                region.id, peers=(*peers, PeerMeta(dst, region.id * 100 + dst))
            )
    else:
        raise AssertionError("balancing never settled")
    final = {s: sum(r.peer_on(s) is not None for r in regions.values()) for s in live}
    assert sum(final.values()) == 36 and max(final.values()) - min(final.values()) <= 2


def test_a_region_short_of_stores_is_not_busy_so_leaders_still_balance() -> None:
    replicas = ReplicaScheduler(
        SimpleNamespace(config=SimpleNamespace(replicas=3), now=0.0, store_id=1)
    )
    two = Region(7, peers=(PeerMeta(1, 10), PeerMeta(2, 20)))  # a 2-store cluster
    assert not replicas.busy(two)
    assert replicas.busy(Region(7, peers=(*REGION.peers, PeerMeta(4, 40))))  # one to trim
    assert replicas.busy(Region(7, peers=(*two.peers, PeerMeta(3, 30, LEARNER))))
    replicas.start_move(7, 2)
    assert replicas.busy(two)
