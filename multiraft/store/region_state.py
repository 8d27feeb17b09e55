"""How a region's state starts and ends on this store: the first state of a
new region (bootstrap or split), what storage keeps of its descriptor, and
the tombstone a removed replica leaves behind."""

from __future__ import annotations

import msgpack

from ..protocol.region import VOTER, Region
from ..raft import ConfState, HardState, Snapshot, SnapshotMetadata
from ..storage import keys
from ..storage.engine import Engine, WriteBatch
from ..storage.peer_storage import PeerStorage
from ..storage.states import RegionState

BOOTSTRAP_INDEX = 5
"""Initial log position of a new region (bootstrap or split)."""


def region_state(region: Region, cs: ConfState) -> RegionState:
    """What storage keeps of a region: its descriptor, range and membership."""
    return RegionState(msgpack.packb(region.to_wire()), region.start, region.end, cs)


def bootstrap_region(batch: WriteBatch, storage: PeerStorage, region: Region) -> None:
    """A region's first state, identical on every replica: a log that starts
    after BOOTSTRAP_INDEX, so replicas added later catch up by snapshot."""
    cs = ConfState(
        tuple(p.peer_id for p in region.peers if p.role == VOTER),
        tuple(p.peer_id for p in region.peers if p.role != VOTER),
    )
    meta = SnapshotMetadata(cs, BOOTSTRAP_INDEX, BOOTSTRAP_INDEX)
    storage.apply_snapshot(batch, Snapshot(b"", meta), region_state(region, cs))
    storage.set_hard_state(batch, HardState(BOOTSTRAP_INDEX, 0, BOOTSTRAP_INDEX))


def destroy_region(batch: WriteBatch, storage: PeerStorage, conf_ver: int, peer_id: int) -> None:
    """Delete a removed replica's log, states and sessions, and leave a
    tombstone (the conf_ver it knew last, its peer id), so late messages of
    the old membership cannot bring it back; a later membership that names
    this store again (with a new peer id) can. Its data, which no region
    here owns any more, is cleared after the batch in bounded transactions
    (`kv.RangeClear`); if a crash comes first, whatever later takes the
    range here does so by snapshot, which clears it."""
    rid = storage.region_id
    batch.delete_range(keys.region_prefix(rid), keys.region_prefix(rid + 1))
    batch.put(keys.tombstone_key(rid), msgpack.packb([conf_ver, peer_id]))


def is_tombstoned(engine: Engine, region: Region, peer_id: int) -> bool:
    """Whether `peer_id` of `region` (as a message describes it) is a replica
    this store already removed."""
    value = engine.get(keys.tombstone_key(region.id))
    if value is None:
        return False
    conf_ver, dead_peer = msgpack.unpackb(value)
    return bool(peer_id == dead_peer or region.epoch.conf_ver <= conf_ver)
