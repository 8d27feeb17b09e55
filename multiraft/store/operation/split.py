"""Splitting a region at one key or many, as a Raft admin command: every
replica shrinks the region to [start, first key) and creates a region from
each key to the next on the same stores, in the same batch, so no data
moves. The parent's leader
campaigns for the new region at once, instead of waiting for a timeout."""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace
from typing import Any

from ...errors import EpochNotMatch, InvalidRequest, KeyNotInRegion, MultiraftError
from ...protocol.limits import MAX_SPLIT_KEYS, check_key
from ...protocol.region import VOTER, Epoch, PeerMeta, Region
from ...storage.peer_storage import PeerStorage
from .. import session
from ..checks import check_leader, check_region, find_peer, not_leader
from ..commands import SplitCommand, SplitPart, encode_split
from ..context import StoreContext
from ..outbox import Handle
from ..peer import Peer
from ..region_state import bootstrap_region, region_state
from ..split_check import RegionSize
from . import peer_life, quiesce
from .batch import NewRegion, TurnBatch

log = logging.getLogger(__name__)


def accept(ctx: StoreContext, args: dict[str, Any], handle: Handle) -> None:
    """A client asks to split the region holding `key` at `key`, or at
    every key of `keys` (all in one region)."""
    raw = args["keys"] if "keys" in args else [args["key"]]
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_SPLIT_KEYS:
        raise InvalidRequest(f"keys must be a list of 1 to {MAX_SPLIT_KEYS} keys")
    keys = sorted({check_key(k) for k in raw})
    epoch = Epoch.from_wire(args["epoch"])
    peer = find_peer(ctx.peers, args["region"])
    region = peer.region
    check_region(region, epoch.version, keys[0], ctx.router)
    check_region(region, key=keys[-1])
    check_leader(peer)
    if keys[0] == region.start:
        # Already a boundary (a split raced this one): the client gets the
        # current descriptors, and sees the boundary itself.
        raise EpochNotMatch(
            f"{keys[0]!r} already starts region {region.id}", {"regions": [peer.region_wire()]}
        )
    propose(ctx, peer, keys, handle)


def propose(ctx: StoreContext, peer: Peer, keys: list[bytes], handle: Handle | None) -> None:
    """Propose splitting `peer`'s region at `keys` (ascending, strictly
    inside it; this store leads it); `handle` is None when the store itself
    asks (the split checker)."""
    n = len(peer.region.peers)
    ids = ctx.meta.alloc_ids(ctx.engine, len(keys) * (1 + n))
    parts = [
        SplitPart(key, ids[i * (1 + n)], ids[i * (1 + n) + 1 : (i + 1) * (1 + n)])
        for i, key in enumerate(keys)
    ]
    handles = [handle] if handle else []
    dropped = peer.propose(encode_split(SplitCommand(peer.region.epoch.version, parts)), handles)
    ctx.metrics.count(ctx.metrics.proposals, "split")
    if dropped is not None:
        for h in handles:
            ctx.outbox.reply(h, not_leader(peer, str(dropped)))
    else:
        # Followers create the new regions when they apply the split, and
        # the new leaders campaign as soon as they do: tell followers of
        # the commit at once, not with the next append or heartbeat.
        peer.raw_node.broadcast_commit_of(peer.proposals[-1][0])
    quiesce.wake(ctx, peer)


def apply(tb: TurnBatch, peer: Peer, cmd: SplitCommand) -> Any:
    """Shrink the region to [start, first key) and create a region from each
    key to the next (the last to the old end) on the same stores, in this
    batch."""
    region = peer.region
    keys = [p.key for p in cmd.parts]
    refused = _refusal(region, cmd, keys)
    if refused is not None:
        return refused
    epoch = Epoch(region.epoch.version + 1, region.epoch.conf_ver)
    left = replace(region, end=keys[0], epoch=epoch)
    ends = [*keys[1:], region.end]
    new = [
        Region(
            part.region_id,
            part.key,
            end,
            epoch,
            tuple(
                PeerMeta(p.store_id, new_id, p.role)
                for p, new_id in zip(region.peers, part.peer_ids, strict=True)
            ),
        )
        for part, end in zip(cmd.parts, ends, strict=True)
    ]
    peer.region = left  # later commands of this batch see the new range
    tb.ranges.append(left)
    peer.size = RegionSize()
    # Raft's configuration, not storage's: a membership change applied
    # earlier in this batch is not committed to storage yet.
    peer.storage.set_region(tb.batch, region_state(left, peer.raw_node.status().conf_state))
    for right in new:
        storage = PeerStorage(tb.engine, right.id)
        bootstrap_region(tb.batch, storage, right)
        sessions = peer.sessions.copy()  # retries may land on any part
        session.write_all(tb.batch, right.id, sessions)
        tb.new_regions.append(NewRegion(peer, right, storage, sessions))
    log.info(
        "region %d split at %d keys from %r: new regions %s",
        region.id,
        len(keys),
        keys[0],
        [r.id for r in new],
    )
    return [left.to_wire(), *(r.to_wire() for r in new)]


def _refusal(region: Region, cmd: SplitCommand, keys: list[bytes]) -> MultiraftError | None:
    """Why the split no longer fits the region (the same on every replica)."""
    try:
        check_region(region, cmd.epoch_version, keys[0])
        check_region(region, key=keys[-1])
    except MultiraftError as e:
        return e
    if keys[0] == region.start or any(a >= b for a, b in itertools.pairwise(keys)):
        return KeyNotInRegion(
            f"split keys not strictly inside region {region.id}", {"region": region.to_wire()}
        )
    if any(len(p.peer_ids) != len(region.peers) for p in cmd.parts):
        # The membership changed after the split was proposed: the
        # client (or the split checker) proposes again with new ids.
        return EpochNotMatch(
            f"region {region.id} membership changed before the split applied",
            {"regions": [region.to_wire()]},
        )
    return None


def start_new_regions(ctx: StoreContext, tb: TurnBatch) -> None:
    """The splits of the committed batch are durable: run the new regions'
    replicas here. One replica of each new region campaigns at once instead
    of waiting for a timeout, chosen by the region's id (every replica
    computes the same), so the new leaders spread over the stores."""
    for new in tb.new_regions:
        ctx.router.update(new.parent.region)
        peer = peer_life.create(ctx, new.region, new.storage, new.sessions)
        voters = [p for p in new.region.peers if p.role == VOTER]
        if voters and voters[new.region.id % len(voters)].store_id == ctx.store_id:
            peer.raw_node.campaign()
