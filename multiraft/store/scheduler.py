"""Decisions a store takes on its own about the regions it leads: split
them when they grow too big, and hand leaderships over when it leads more
than its share (replica placement is `replicas`'s). No central service is
asked."""

from __future__ import annotations

import logging

from ..protocol.region import VOTER
from .context import StoreContext
from .gossip import leader_hint
from .operation import quiesce, split
from .replicas import ReplicaScheduler
from .split_check import measure

log = logging.getLogger(__name__)

SPLIT_SCANS_PER_ROUND = 4
"""Exact region scans per split-check round, so a round never stalls the loop."""


class Scheduler:
    def __init__(self, ctx: StoreContext, replicas: ReplicaScheduler) -> None:
        self.ctx = ctx
        self.replicas = replicas

    def check_splits(self) -> None:
        """Split the regions this store leads that outgrew the split policy."""
        ctx = self.ctx
        policy = ctx.config.split_policy
        scans = 0
        for peer in list(ctx.peers.values()):
            if scans >= SPLIT_SCANS_PER_ROUND:
                break
            size = peer.size
            if not peer.is_leader() or (size.known and not policy.exceeded(size.bytes, size.keys)):
                continue
            scans += 1
            peer.size, split_at = measure(ctx.engine, peer.region, policy)
            if split_at is not None and not peer.proposals:
                log.info(
                    "region %d holds %d bytes in %d keys: splitting at %r",
                    peer.region.id,
                    peer.size.bytes,
                    peer.size.keys,
                    split_at,
                )
                split.propose(ctx, peer, [split_at], None)

    def balance_leaders(self) -> None:
        """Hand one leadership to the live store that leads the fewest regions
        if this store leads at least two more than it. One move per round
        and a gap of two keep it from oscillating."""
        ctx = self.ctx
        counts = dict.fromkeys(ctx.book.live(ctx.now), 0)
        for region in ctx.router.regions():
            leader = leader_hint(ctx, region.id)
            if leader in counts:
                counts[leader] += 1
        mine = counts.get(ctx.store_id, 0)
        for peer in ctx.peers.values():
            status = peer.status()
            if not status.is_leader or status.lead_transferee or self.replicas.busy(peer.region):
                continue
            targets = [p for p in peer.region.peers if p.store_id in counts and p.role == VOTER]
            best = min(targets, key=lambda p: (counts[p.store_id], p.store_id))
            if counts[best.store_id] + 2 <= mine:
                log.info(
                    "region %d: moving leadership to store %d (%d vs %d leaders)",
                    peer.region.id,
                    best.store_id,
                    counts[best.store_id],
                    mine,
                )
                peer.raw_node.transfer_leader(best.peer_id)
                quiesce.wake(ctx, peer)
                return
