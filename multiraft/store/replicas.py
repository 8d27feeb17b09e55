"""Replica placement, decided by each region's leader on its own store:
keep the region at the configured replica count on live stores (promote
caught-up learners, replace voters on stores gone for good, trim the voter
a move leaves behind) and move replicas from crowded stores to empty ones.
No central service is asked: the store statistics come from gossip.
"""

from __future__ import annotations

import logging
import random

from ..protocol.peer_change import ADD, REMOVE
from ..protocol.region import LEARNER, VOTER, Region
from .context import StoreContext
from .operation import conf_change

log = logging.getLogger(__name__)

REPAIRS_IN_FLIGHT = 4
"""Regions this store re-replicates at once (each may need a snapshot)."""
BALANCE_MARGIN = 1.0
"""Move a replica only from a store holding at least this many regions more
than the live stores' mean to one holding this many fewer. Stores decide on
counts a gossip round old, several at once; moving only across the mean
keeps their overshoot from starting moves back."""
MOVE_TIMEOUT = 120.0
"""Seconds after which a balance move that has not finished is forgotten."""
BALANCE_SAMPLE = 64
"""Regions led here that a balance round picks its move among: any will do,
and a round stays cheap with thousands."""
EXCESS_GRACE = 10.0
"""Seconds a region may keep a voter too many with no move on record here
(a move whose leader changed, an operator's add-peer) before it is trimmed."""


class ReplicaScheduler:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        self.moves: dict[int, tuple[int, float]] = {}
        """Moves under way: region id -> (store it leaves, start)."""
        self.excess_since: dict[int, float] = {}
        """Regions led here with more voters than wanted, and since when."""
        self.rng = random.Random(ctx.store_id)

    def check_replicas(self, balance: bool, everyone: bool) -> None:
        """One membership step for each region this store leads that has a
        learner to promote, too many or too few voters, or a voter on a store
        gone for good; then, if all is healthy and `balance`, at most one
        balance move. Only awake regions are looked at unless `everyone`: a
        quiet one has nothing under way (no learner catching up, no move),
        so a slower round suffices for the stores it needs to leave."""
        ctx = self.ctx
        now = ctx.now
        down = ctx.book.down(now)
        live = set(ctx.book.live(now)) - down
        counts = self.region_counts()
        repairs = 0
        self.moves = {
            r: m for r, m in self.moves.items() if now - m[1] < MOVE_TIMEOUT and r in ctx.leaders
        }
        led = ctx.leaders if everyone else ctx.leaders & ctx.awake
        for region_id in list(led):
            peer = ctx.peers[region_id]
            region = peer.region
            leaving = self.moves.get(region.id, (None, 0.0))[0]
            if leaving is None and self._excess_for(region, now) > EXCESS_GRACE:
                # Trim a voter on a store not heard from first, else the
                # most crowded one (never the leader's own).
                leaving = max(
                    (p.store_id for p in region.peers if p.store_id != ctx.store_id),
                    key=lambda s: (s not in live, counts.get(s, 0), s),
                )
            step = plan_repair(region, ctx.config.replicas, live, down, counts, leaving)
            if step is None:
                self.moves.pop(region.id, None)
                continue
            repairs += 1
            if repairs > REPAIRS_IN_FLIGHT:
                return
            conf_change.take_step(ctx, peer, step[0], step[1], None)
        if balance and repairs == 0 and not self.moves:
            self._balance(live, counts)

    def _excess_for(self, region: Region, now: float) -> float:
        """Seconds `region` has had a voter too many (0 if it has not)."""
        voters = sum(p.role == VOTER for p in region.peers)
        if voters <= self.ctx.config.replicas:
            self.excess_since.pop(region.id, None)
            return 0.0
        return now - self.excess_since.setdefault(region.id, now)

    def busy(self, region: Region) -> bool:
        """Whether a replica change of `region` is under way (its leadership
        should stay put until it is done): a move, a learner, or a voter to
        trim. Too few voters with no store to add one on is not a change."""
        voters = sum(p.role == VOTER for p in region.peers)
        return (
            region.id in self.moves
            or voters > self.ctx.config.replicas
            or any(p.role == LEARNER for p in region.peers)
        )

    def _balance(self, live: set[int], counts: dict[int, int]) -> None:
        """Start at most one balance move among the healthy regions led here."""
        ctx = self.ctx
        led = [ctx.peers[r].region for r in ctx.leaders]
        if len(led) > BALANCE_SAMPLE:
            led = self.rng.sample(led, BALANCE_SAMPLE)
        healthy = [r for r in led if not self.busy(r)]
        move = pick_balance_move(healthy, ctx.store_id, live, counts)
        if move is not None:
            region, src, dst = move
            log.info("region %d: moving a replica from store %d to store %d", region.id, src, dst)
            self.start_move(region.id, src)
            conf_change.take_step(ctx, ctx.peers[region.id], dst, ADD, None)

    def start_move(self, region_id: int, leaving: int) -> None:
        """A replica of `region_id` is being added to replace the one on
        `leaving`: once the new one votes, that one goes."""
        self.moves[region_id] = (leaving, self.ctx.now)

    def region_counts(self) -> dict[int, int]:
        """Replicas per store, as each store last reported."""
        ctx = self.ctx
        counts = {
            sid: stats.get("regions", 0)
            for sid, stats in ctx.book.stats.items()
            if isinstance(stats.get("regions", 0), int)
        }
        counts[ctx.store_id] = len(ctx.peers)
        return counts


def plan_repair(
    region: Region,
    replicas: int,
    live: set[int],
    down: set[int],
    counts: dict[int, int],
    leaving: int | None,
) -> tuple[int, str] | None:
    """The next membership step that brings `region` to `replicas` voters on
    live stores, as (store id, ADD or REMOVE); None when it is there.
    `leaving` is the store a move takes the replica from."""
    learners = [p for p in region.peers if p.role == LEARNER]
    for learner in learners:
        # A learner on a store not heard from cannot catch up: it goes (a
        # repair or a move starts again from a live store).
        return (learner.store_id, ADD if learner.store_id in live else REMOVE)
    voters = [p.store_id for p in region.peers if p.role == VOTER]
    dead = [s for s in voters if s in down]
    if len(voters) > replicas:
        # Only a replacement or a move ends with a voter too many; a replica
        # an operator added beyond the count stays.
        if dead:
            return (dead[0], REMOVE)
        if leaving in voters:
            return (leaving, REMOVE)
    if dead or len(voters) < replicas:
        spare = [s for s in live if s not in voters]
        if spare:
            return (min(spare, key=lambda s: (counts.get(s, 0), s)), ADD)
    return None


def pick_balance_move(
    led: list[Region], me: int, live: set[int], counts: dict[int, int]
) -> tuple[Region, int, int] | None:
    """(region, from store, to store) for the move that narrows the widest
    gap between a store holding one of `led` and a live store without it,
    if the first holds at least BALANCE_MARGIN regions more than the live
    stores' mean and the second at least that many fewer; None otherwise.
    The leader's own replica (on `me`) never moves: the region would be
    left with a voter too many once leadership passed on mid-move."""
    mean = sum(counts.get(s, 0) for s in live) / max(1, len(live))
    best: tuple[int, Region, int, int] | None = None
    for region in led:
        holders = {p.store_id for p in region.peers}
        targets = [s for s in live if s not in holders]
        sources = holders - {me}
        if not targets or not sources:
            continue
        src = max(sources, key=lambda s: (counts.get(s, 0), s))
        dst = min(targets, key=lambda s: (counts.get(s, 0), s))
        gap = counts.get(src, 0) - counts.get(dst, 0)
        crowded = counts.get(src, 0) >= mean + BALANCE_MARGIN
        empty = counts.get(dst, 0) <= mean - BALANCE_MARGIN
        if crowded and empty and (best is None or gap > best[0]):
            best = (gap, region, src, dst)
    return None if best is None else best[1:]
