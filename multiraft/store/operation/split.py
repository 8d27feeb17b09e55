"""Splitting a region in two at a key, as a Raft admin command: every
replica shrinks the region to [start, key) and creates [key, end) on the
same stores in the same batch, so no data moves. The parent's leader
campaigns for the new region at once, instead of waiting for a timeout."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from ...errors import EpochNotMatch, KeyNotInRegion, MultiraftError
from ...protocol.limits import check_key
from ...protocol.region import Epoch, PeerMeta, Region
from ...storage.peer_storage import PeerStorage
from .. import session
from ..checks import check_leader, check_region, find_peer, not_leader
from ..commands import SplitCommand, encode_split
from ..context import StoreContext
from ..outbox import Handle
from ..peer import Peer
from ..region_state import bootstrap_region, region_state
from ..split_check import RegionSize
from . import peer_life
from .batch import NewRegion, TurnBatch

log = logging.getLogger(__name__)


def accept(ctx: StoreContext, args: dict[str, Any], handle: Handle) -> None:
    """A client asks to split the region holding `key` at `key`."""
    key = check_key(args["key"])
    epoch = Epoch.from_wire(args["epoch"])
    peer = find_peer(ctx.peers, args["region"])
    check_region(peer.region, epoch.version, key, ctx.router)
    check_leader(peer)
    if key == peer.region.start:
        # Already a boundary (a split raced this one): the client gets the
        # current descriptors, and sees the boundary itself.
        raise EpochNotMatch(
            f"{key!r} already starts region {peer.region.id}", {"regions": [peer.region_wire()]}
        )
    propose(ctx, peer, key, handle)


def propose(ctx: StoreContext, peer: Peer, key: bytes, handle: Handle | None) -> None:
    """Propose splitting `peer`'s region at `key` (this store leads it and
    `key` lies strictly inside it); `handle` is None when the store itself
    asks (the split checker)."""
    ids = ctx.meta.alloc_ids(ctx.engine, 1 + len(peer.region.peers))
    cmd = SplitCommand(peer.region.epoch.version, key, ids[0], ids[1:])
    handles = [handle] if handle else []
    dropped = peer.propose(encode_split(cmd), handles)
    if dropped is not None:
        for h in handles:
            ctx.outbox.reply(h, not_leader(peer, str(dropped)))
    ctx.wake(peer)


def apply(tb: TurnBatch, peer: Peer, cmd: SplitCommand) -> Any:
    """Shrink the region to [start, split_key) and create the region
    [split_key, end) on the same stores, in this batch."""
    region = peer.region
    try:
        check_region(region, cmd.epoch_version, cmd.split_key)
        if cmd.split_key == region.start:
            raise KeyNotInRegion(
                f"split key starts region {region.id}", {"region": peer.region_wire()}
            )
    except MultiraftError as e:
        return e
    if len(cmd.new_peer_ids) != len(region.peers):
        # The membership changed after the split was proposed: the
        # client (or the split checker) proposes again with new ids.
        return EpochNotMatch(
            f"region {region.id} membership changed before the split applied",
            {"regions": [region.to_wire()]},
        )
    epoch = Epoch(region.epoch.version + 1, region.epoch.conf_ver)
    left = replace(region, end=cmd.split_key, epoch=epoch)
    peers = tuple(
        PeerMeta(p.store_id, new_id, p.role)
        for p, new_id in zip(region.peers, cmd.new_peer_ids, strict=True)
    )
    right = Region(cmd.new_region_id, cmd.split_key, region.end, epoch, peers)
    peer.region = left  # later commands of this batch see the new range
    peer.size = RegionSize()
    # Raft's configuration, not storage's: a membership change applied
    # earlier in this batch is not committed to storage yet.
    peer.storage.set_region(tb.batch, region_state(left, peer.raw_node.status().conf_state))
    storage = PeerStorage(tb.engine, right.id)
    bootstrap_region(tb.batch, storage, right)
    sessions = peer.sessions.copy()
    session.write_all(tb.batch, right.id, sessions)
    tb.new_regions.append(NewRegion(peer, right, storage, sessions))
    log.info("region %d split at %r: new region %d", region.id, cmd.split_key, right.id)
    return [left.to_wire(), right.to_wire()]


def start_new_regions(ctx: StoreContext, tb: TurnBatch) -> None:
    """The splits of the committed batch are durable: run the new regions'
    replicas here; where this store leads the parent, campaign at once."""
    for new in tb.new_regions:
        ctx.router.update(new.parent.region)
        peer = peer_life.create(ctx, new.region, new.storage, new.sessions)
        if new.parent.is_leader():
            peer.raw_node.campaign()
