"""Decisions a store takes on its own about the regions it leads: split
them when they grow too big, and hand leaderships over when it leads more
than its share (replica placement is `replicas`'s). No central service is
asked."""

from __future__ import annotations

import logging

from ..protocol.region import VOTER
from .context import StoreContext
from .operation import quiesce, split
from .peer import Peer
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
        for region_id in list(ctx.leaders):
            if scans >= SPLIT_SCANS_PER_ROUND:
                break
            peer = ctx.peers[region_id]
            size = peer.size
            if size.known and not policy.exceeded(size.bytes, size.keys):
                continue
            scans += 1
            ctx.applied.flush_now(region_id)  # measure all it applied
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
        """Hand leaderships to the live stores that lead the fewest regions
        while this store leads at least two more than one of them: at most a
        quarter of the gap per round (the others' counts are a gossip round
        old, and they may be giving leaderships away at the same time)."""
        ctx = self.ctx
        counts = {sid: 0 for sid in ctx.book.live(ctx.now)}
        for sid, stats in ctx.book.stats.items():
            if sid in counts and isinstance(stats.get("leaders"), int):
                counts[sid] = stats["leaders"]
        counts[ctx.store_id] = len(ctx.leaders)
        gap = counts[ctx.store_id] - min(counts.values())
        if gap < 2:
            return
        budget = max(1, gap // 4)
        for region_id in list(ctx.leaders):
            if budget == 0:
                return
            if self._hand_over(ctx.peers[region_id], counts):
                budget -= 1

    def _hand_over(self, peer: Peer, counts: dict[int, int]) -> bool:
        """Transfer `peer`'s leadership to the least loaded store holding a
        voter of its region, if that store leads two fewer than this one."""
        ctx = self.ctx
        if peer.status().lead_transferee or self.replicas.busy(peer.region):
            return False
        targets = [p for p in peer.region.peers if p.store_id in counts and p.role == VOTER]
        best = min(targets, key=lambda p: (counts[p.store_id], p.store_id))
        mine = counts[ctx.store_id]
        if counts[best.store_id] + 2 > mine:
            return False
        log.info(
            "region %d: moving leadership to store %d (%d vs %d leaders)",
            peer.region.id,
            best.store_id,
            counts[best.store_id],
            mine,
        )
        peer.transfer_leader(best.peer_id)
        quiesce.wake(ctx, peer)
        counts[best.store_id] += 1
        counts[ctx.store_id] -= 1
        return True
