"""Decisions a store takes on its own about the regions it leads: split
them when they grow too big, and hand leaderships over when it leads more
than its share (replica placement is `replicas`'s). No central service is
asked."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..protocol.region import VOTER
from .split_check import measure

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)

SPLIT_SCANS_PER_ROUND = 4
"""Exact region scans per split-check round, so a round never stalls the loop."""


class Scheduler:
    def __init__(self, store: Store) -> None:
        self.store = store

    def check_splits(self) -> None:
        """Split the regions this store leads that outgrew the split policy."""
        store = self.store
        policy = store.config.split_policy
        scans = 0
        for peer in list(store.peers.values()):
            if scans >= SPLIT_SCANS_PER_ROUND:
                break
            size = peer.size
            if not peer.is_leader() or (size.known and not policy.exceeded(size.bytes, size.keys)):
                continue
            scans += 1
            peer.size, split_at = measure(store.engine, peer.region, policy)
            if split_at is not None and not peer.proposals:
                log.info(
                    "region %d holds %d bytes in %d keys: splitting at %r",
                    peer.region.id,
                    peer.size.bytes,
                    peer.size.keys,
                    split_at,
                )
                store.propose_split(peer, split_at, None)

    def balance_leaders(self) -> None:
        """Hand one leadership to the live store that leads the fewest regions
        if this store leads at least two more than it. One move per round
        and a gap of two keep it from oscillating."""
        store = self.store
        counts = dict.fromkeys(store.book.live(), 0)
        for region in store.router.regions():
            leader = store.leader_hint(region.id)
            if leader in counts:
                counts[leader] += 1
        mine = counts.get(store.store_id, 0)
        for peer in store.peers.values():
            if (
                not peer.is_leader()
                or peer.raw_node.basic_status().lead_transferee
                or store.replicas.busy(peer.region)
            ):
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
                store.touch(peer)
                return
