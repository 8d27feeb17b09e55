"""Replicas come and go: started at startup, by a split or by a message for
a region this store has none of; dropped when removed from their region;
destroyed when gossip shows they were removed while cut off. A removed
replica's data is cleared a few bounded transactions per turn."""

from __future__ import annotations

import logging

from ...errors import RegionNotFound
from ...protocol.region import Region
from ...storage import kv
from ...storage.peer_storage import PeerStorage
from ...transport import codec
from ..context import StoreContext
from ..lease import Lease, lease_duration
from ..meta import load_regions
from ..peer import Peer
from ..region_state import destroy_region, is_tombstoned
from ..session import SessionTable, load_sessions

log = logging.getLogger(__name__)

CLEAR_TXNS_PER_TURN = 2
"""LMDB transactions (each up to 20,000 deletes) of clearing a removed
replica's data per loop turn: the other regions wait at most that long."""


def load_all(ctx: StoreContext) -> None:
    """Start a replica for every region this store's data dir holds."""
    for region, storage in load_regions(ctx.engine):
        create(ctx, region, storage, load_sessions(ctx.engine, region.id), loaded=True)


def create(
    ctx: StoreContext,
    region: Region,
    storage: PeerStorage,
    sessions: SessionTable,
    loaded: bool = False,
) -> Peer:
    """A replica of `region`; `loaded`: from this store's data at its start."""
    for clear in [c for c in ctx.clears if c.overlaps(region.start, region.end)]:
        clear.finish()  # old data must be gone before the new replica's arrives
        ctx.clears.remove(clear)
    config = ctx.config
    lease = Lease(lease_duration(config.raft.election_tick, config.tick_interval))
    hold_votes = loaded and config.lease_reads
    peer = Peer(ctx.store_id, region, storage, sessions, config.raft, lease, hold_votes)
    ctx.peers[region.id] = peer
    ctx.awake.add(region.id)
    ctx.ranges.update(region)
    ctx.router.update(region)
    ctx.touch(peer)
    return peer


def create_from_message(ctx: StoreContext, item: codec.RaftItem) -> Peer | None:
    """A message for a region with no replica here (as TiKV does it): if
    no local region overlaps its range, start an empty replica that the
    leader fills with a snapshot. If one overlaps, this store has not
    applied the split that creates it yet: the leader will retry."""
    try:
        region = Region.from_wire(item.region)
    except (TypeError, ValueError, OverflowError):
        return None
    me = region.peer_on(ctx.store_id)
    if region.id != item.region_id or me is None or me.peer_id != item.message.to:
        return None
    if ctx.ranges.overlapping(region.start, region.end):
        return None
    if is_tombstoned(ctx.engine, region, me.peer_id):
        log.debug("region %d: message for a removed replica", region.id)
        return None
    log.info("region %d: creating an empty replica from a message", region.id)
    return create(ctx, region, PeerStorage(ctx.engine, region.id), SessionTable())


def drop(ctx: StoreContext, peer: Peer) -> None:
    """Forget a replica whose state is already deleted: its region no
    longer has a replica here (the router keeps the descriptor), and
    whatever waited on it gets RegionNotFound (a proposal in flight may
    still commit elsewhere, so the client's retry goes through its session)."""
    log.info("region %d: replica removed from this store", peer.region.id)
    del ctx.peers[peer.region.id]
    ctx.awake.discard(peer.region.id)
    ctx.leaders.discard(peer.region.id)
    ctx.ranges.remove(peer.region.id)
    ctx.clears.append(kv.RangeClear(ctx.engine, peer.region.start, peer.region.end))
    gone = RegionNotFound(f"region {peer.region.id} left this store")
    for h in peer.take_waiting():
        ctx.outbox.reply(h, gone)
    ctx.router.update(peer.region)


def destroy_stale(ctx: StoreContext, peer: Peer, newer: Region) -> None:
    """`newer` (from gossip) shows this store's replica was removed in a
    change it never applied (it was cut off): delete it for good."""
    # Every membership up to `newer`'s that leaves this store out, or up
    # to the one before it that names this store again, is stale.
    readded = newer.peer_on(ctx.store_id) is not None
    conf_ver = newer.epoch.conf_ver - 1 if readded else newer.epoch.conf_ver
    ctx.applied.flush_now()  # nothing of the replica may be written after it is gone
    batch = ctx.engine.batch()
    destroy_region(batch, peer.storage, conf_ver, peer.peer_id)
    batch.commit()
    peer.region = newer
    drop(ctx, peer)


def clear_some(ctx: StoreContext) -> None:
    """A few transactions of clearing removed replicas' data."""
    if ctx.clears and not ctx.clears[0].step(CLEAR_TXNS_PER_TURN):
        ctx.clears.pop(0)
