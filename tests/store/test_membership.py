"""Membership changes as descriptor changes, the repair planner, and the
tombstone a removed replica leaves."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import msgpack
import pytest

from multiraft.protocol.peer_change import ADD, REMOVE, goal_reached
from multiraft.protocol.region import LEARNER, VOTER, Epoch, PeerMeta, Region
from multiraft.raft import ConfChange, ConfChangeType
from multiraft.storage import keys, kv
from multiraft.storage.engine import Engine
from multiraft.storage.peer_storage import PeerStorage
from multiraft.store.apply import bootstrap_region, destroy_region, is_tombstoned
from multiraft.store.membership import ChangeRefused, changed_region, conf_change
from multiraft.store.replicas import ReplicaScheduler, pick_balance_move, plan_repair

REGION = Region(7, b"a", b"m", Epoch(3, 5), (PeerMeta(1, 10), PeerMeta(2, 20), PeerMeta(3, 30)))


def test_add_learner_then_promote_bumps_conf_ver_each_time() -> None:
    added = changed_region(REGION, conf_change(ConfChangeType.ADD_LEARNER_NODE, 40, 4, 5))
    assert added.peer_on(4) == PeerMeta(4, 40, LEARNER)
    assert added.epoch == Epoch(3, 6)
    promoted = changed_region(added, conf_change(ConfChangeType.ADD_NODE, 40, 4, 6))
    assert promoted.peer_on(4) == PeerMeta(4, 40, VOTER)
    assert promoted.epoch == Epoch(3, 7)
    assert goal_reached(promoted, 4, ADD) and not goal_reached(added, 4, ADD)


def test_remove_drops_the_peer() -> None:
    removed = changed_region(REGION, conf_change(ConfChangeType.REMOVE_NODE, 20, 2, 5))
    assert [p.store_id for p in removed.peers] == [1, 3]
    assert removed.epoch == Epoch(3, 6)
    assert goal_reached(removed, 2, REMOVE)


@pytest.mark.parametrize(
    "cc",
    [
        conf_change(ConfChangeType.ADD_LEARNER_NODE, 40, 4, 4),  # stale conf_ver
        conf_change(ConfChangeType.ADD_LEARNER_NODE, 41, 1, 5),  # store 1 already has one
        conf_change(ConfChangeType.ADD_NODE, 99, 2, 5),  # not that store's peer
        conf_change(ConfChangeType.REMOVE_NODE, 40, 4, 5),  # no replica there
        ConfChange(ConfChangeType.REMOVE_NODE, 20, b"\xc1"),  # undecodable context
    ],
)
def test_changes_that_do_not_fit_are_refused(cc: ConfChange) -> None:
    with pytest.raises(ChangeRefused):
        changed_region(REGION, cc)


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


def test_destroy_deletes_the_replica_and_leaves_a_tombstone(tmp_path: Path) -> None:
    engine = Engine.open(str(tmp_path), store_id=1, cluster_id=9, sync=False)
    try:
        storage = PeerStorage(engine, REGION.id)
        batch = engine.batch()
        bootstrap_region(batch, storage, REGION)
        kv.put(batch, b"b", b"inside")
        kv.put(batch, b"z", b"outside")
        batch.commit()
        batch = engine.batch()
        destroy_region(batch, storage, 6, 20)
        batch.commit()
        assert kv.get(engine, b"b") == b"inside"  # cleared after, in bounded transactions
        kv.RangeClear(engine, REGION.start, REGION.end).finish()
        assert kv.get(engine, b"b") is None
        assert kv.get(engine, b"z") == b"outside"
        with engine.read() as txn:
            left = [k for k, _ in txn.cursor() if k.startswith(keys.region_prefix(REGION.id))]
        assert left == [keys.tombstone_key(REGION.id)]
        assert msgpack.unpackb(engine.get(keys.tombstone_key(REGION.id))) == [6, 20]
        assert is_tombstoned(engine, REGION, 20)  # the removed peer itself
        assert is_tombstoned(engine, REGION.with_epoch(conf_ver=6), 21)  # an old membership
        assert not is_tombstoned(engine, REGION.with_epoch(conf_ver=8), 21)  # re-added later
    finally:
        engine.close()


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
    replicas = ReplicaScheduler(SimpleNamespace(config=SimpleNamespace(replicas=3)))
    two = Region(7, peers=(PeerMeta(1, 10), PeerMeta(2, 20)))  # a 2-store cluster
    assert not replicas.busy(two)
    assert replicas.busy(Region(7, peers=(*REGION.peers, PeerMeta(4, 40))))  # one to trim
    assert replicas.busy(Region(7, peers=(*two.peers, PeerMeta(3, 30, LEARNER))))
    replicas.start_move(7, 2)
    assert replicas.busy(two)
