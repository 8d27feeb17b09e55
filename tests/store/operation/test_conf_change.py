"""Replica changes: the descriptor each step leads to (or its refusal),
and their apply side (descriptor, Raft configuration and storage in one
batch; a removed replica destroyed)."""

from __future__ import annotations

import pytest

from multiraft.errors import EpochNotMatch
from multiraft.protocol.peer_change import ADD, REMOVE, goal_reached
from multiraft.protocol.region import LEARNER, VOTER, Epoch, PeerMeta, Region
from multiraft.raft import ConfChange, ConfChangeType
from multiraft.storage import kv
from multiraft.storage.peer_storage import PeerStorage
from multiraft.store.operation.conf_change import ChangeRefused, changed_region, conf_change
from multiraft.store.region_state import is_tombstoned
from tests.store.operation.conftest import REGION as ONE_REPLICA
from tests.store.operation.conftest import Harness
from tests.store.operation.test_write import put

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


def test_conf_changes_update_descriptor_raft_and_storage_or_are_refused(h: Harness) -> None:
    add = h.conf_entry(ConfChangeType.ADD_LEARNER_NODE, 20, 2, 1)
    stale = h.conf_entry(ConfChangeType.ADD_NODE, 20, 2, 1)  # proposed at conf_ver 1 too
    tb = h.batch()
    h.apply_into(tb, add, stale)
    tb.batch.commit()
    by_index = h.by_id()
    region = Region.from_wire(by_index[add.index])
    assert region.peer_on(2) == PeerMeta(2, 20, LEARNER) and region.epoch == Epoch(1, 2)
    assert isinstance(by_index[stale.index], EpochNotMatch)
    assert h.peer.region == region and tb.changed == [h.peer]
    assert h.peer.raw_node.status().conf_state.learners == (20,)
    reopened = PeerStorage(h.engine, ONE_REPLICA.id)
    assert reopened.region.conf_state.learners == (20,)
    assert reopened.apply_state.applied_index == stale.index


def test_removing_this_replica_destroys_it_and_applies_nothing_after(h: Harness) -> None:
    h.apply(h.entry(put(b"p", b"1")))
    learner = h.conf_entry(ConfChangeType.ADD_LEARNER_NODE, 20, 2, 1)
    promote = h.conf_entry(ConfChangeType.ADD_NODE, 20, 2, 2)
    remove_me = h.conf_entry(ConfChangeType.REMOVE_NODE, 1, 1, 3)
    later = h.entry(put(b"q", b"2", seq=2))
    tb = h.batch()
    h.apply_into(tb, learner, promote, remove_me, later)
    tb.batch.commit()
    assert tb.removed == [h.peer]
    assert [p.store_id for p in h.peer.region.peers] == [2]
    assert PeerStorage(h.engine, ONE_REPLICA.id).region.descriptor == b""
    assert kv.get(h.engine, b"q") is None  # the entry after the removal was not applied
    assert is_tombstoned(h.engine, ONE_REPLICA, 1)
