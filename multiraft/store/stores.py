"""The cluster's stores as this store knows them: their addresses (durable,
in the store meta), when each was last heard from, and what each last said
about itself. Gossip keeps every store's copy current; the scheduling
decisions read it. Time comes in as an argument (the turn's clock)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

from ..protocol.limits import check_store_addr
from ..protocol.region import Region
from ..storage.engine import Engine
from .meta import StoreMeta

log = logging.getLogger(__name__)


class StoreBook:
    def __init__(
        self,
        meta: StoreMeta,
        engine: Engine,
        live_window: float,
        down_after: float,
        now: float,
    ) -> None:
        self.me = meta.store_id
        self.meta = meta
        self.addrs = meta.stores
        """store id -> "HOST:PORT", this store included (the meta's own dict)."""
        self.version = 0
        """Bumped whenever `addrs` changes (the shell reconnects then)."""
        self._engine = engine
        self._live_window = live_window
        self._down_after = down_after
        self.started = now
        self.last_seen: dict[int, float] = {}
        self.stats: dict[int, dict[str, Any]] = {}
        """What each other store last said about itself."""

    def heard_from(self, store_id: int, now: float) -> None:
        self.last_seen[store_id] = now

    def learn(self, sender: int, stats: Any, addrs: Any, now: float) -> None:
        """What a store gossiped: its own statistics and the stores it knows."""
        if isinstance(stats, dict):
            self.stats[sender] = stats
        for sid, addr in addrs.items():
            if type(sid) is not int or sid < 1 or sid in self.addrs:
                continue
            try:
                self.add(sid, check_store_addr(addr), now)
            except (TypeError, ValueError) as e:
                log.warning("store %d gossiped a bad store address: %s", sender, e)

    def add(self, store_id: int, addr: str, now: float) -> None:
        """Remember a store (joined through us or heard of), durably; it
        counts as heard from now, for the down-time clock."""
        log.info("store %d at %s joins the cluster", store_id, addr)
        self.addrs[store_id] = addr
        self.version += 1
        self.last_seen.setdefault(store_id, now)
        batch = self._engine.batch()
        self.meta.write(batch)
        batch.commit()

    def has_been_running(self, store_id: int, regions: Iterable[Region]) -> bool:
        """Whether `store_id` was heard from, or holds replicas of `regions`."""
        if store_id in self.stats:
            return True
        return any(r.peer_on(store_id) is not None for r in regions)

    def heard_within(self, window: float, now: float) -> list[int]:
        """The other stores heard from in the last `window` seconds."""
        horizon = now - window
        return [s for s, seen in self.last_seen.items() if seen >= horizon and s != self.me]

    def live(self, now: float) -> list[int]:
        """This store and the stores heard from within the live window."""
        horizon = now - self._live_window
        seen = self.last_seen
        return [s for s in self.addrs if s == self.me or seen.get(s, -math.inf) >= horizon]

    def down(self, now: float) -> set[int]:
        """Stores silent for longer than the down time (counted from this
        store's start for those never heard from): gone for good."""
        horizon = now - self._down_after
        return {
            s for s in self.addrs if s != self.me and self.last_seen.get(s, self.started) < horizon
        }

    @staticmethod
    def state(store_id: int, live: set[int], down: set[int]) -> str:
        if store_id in live:
            return "up"
        return "down" if store_id in down else "disconnected"
