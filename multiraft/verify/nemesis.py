"""The faults of a verify run, one at a time, chosen by a seeded RNG and
each recorded as a `Fault` from when it began to when it healed.

- kill: SIGKILL a store, restart it from its data dir after a while;
- pause: SIGSTOP a store, SIGCONT after a while (longer or shorter than a
  leader's lease);
- partition: cut one store off from the others, or with 4 stores or more a
  random minority from the majority; clients still reach every store;
- split: split the region holding a random register at that key;
- transfer: hand a random region's leadership to another of its voters;
- move: move a random region's replica to a store without one (needs a
  store that holds no replica of it: more stores than replicas).

kill, pause and partition need the store processes (a cluster `verify`
started itself); split, transfer and move need an admin key only.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from ..client import AsyncClient
from ..errors import MultiraftError
from ..protocol.region import VOTER, Region
from .cluster import VerifyCluster
from .history import Fault
from .workload import Clock, Keys, sleep_unless

NEMESES = ("kill", "pause", "partition", "split", "transfer", "move")
PROCESS_FAULTS = ("kill", "pause", "partition")
"""The faults that need the stores' processes."""

CALM = (0.5, 2.5)
"""Seconds between two faults (uniform)."""
HOLD = (0.5, 3.0)
"""Seconds a kill, pause or partition lasts before it heals (uniform)."""
MOVE_TIMEOUT = 30.0


class Nemesis:
    """Injects `kinds` until stopped; `faults`: every one, healed or not."""

    def __init__(
        self,
        kinds: Sequence[str],
        clock: Clock,
        admin: AsyncClient,
        keys: Keys,
        stores: Sequence[int],
        *,
        seed: int,
        cluster: VerifyCluster | None = None,
        log: Callable[[Fault], None] = lambda _f: None,
    ) -> None:
        unknown = set(kinds) - set(NEMESES)
        if unknown:
            raise ValueError(f"unknown nemeses: {', '.join(sorted(unknown))}")
        if cluster is None and set(kinds) & set(PROCESS_FAULTS):
            raise ValueError("kill, pause and partition need the cluster's processes")
        self.kinds = list(kinds)
        self.clock = clock
        self.admin = admin
        self.keys = keys
        self.stores = list(stores)
        self.cluster = cluster
        self.rng = random.Random(f"{seed}/nemesis")
        self.log = log
        self.faults: list[Fault] = []

    async def run(self, stop: asyncio.Event) -> None:
        """Calm, a fault, calm, ... until `stop`; whatever is broken when
        it stops (or is cancelled) is healed first."""
        if not self.kinds:
            return
        while not stop.is_set():
            await sleep_unless(stop, self.rng.uniform(*CALM))
            if stop.is_set():
                return
            kind = self.rng.choice(self.kinds)
            await getattr(self, f"_{kind}")(stop)

    def _record(self, name: str, detail: str, start: float) -> None:
        fault = Fault(name, detail, start, self.clock.now())
        self.faults.append(fault)
        self.log(fault)

    async def _window(
        self,
        name: str,
        detail: str,
        stop: asyncio.Event,
        inject: Callable[[], None],
        heal: Callable[[], None],
    ) -> None:
        """inject(), a while, heal(): also when stopped or cancelled."""
        start = self.clock.now()
        inject()
        try:
            await sleep_unless(stop, self.rng.uniform(*HOLD))
        finally:
            heal()
            self._record(name, detail, start)

    async def _kill(self, stop: asyncio.Event) -> None:
        assert self.cluster is not None
        c, sid = self.cluster, self.rng.choice(self.stores)
        await self._window(
            "kill", f"store {sid}", stop, lambda: c.kill(sid), lambda: c.restart(sid)
        )

    async def _pause(self, stop: asyncio.Event) -> None:
        assert self.cluster is not None
        c, sid = self.cluster, self.rng.choice(self.stores)
        await self._window(
            "pause", f"store {sid}", stop, lambda: c.pause(sid), lambda: c.resume(sid)
        )

    async def _partition(self, stop: asyncio.Event) -> None:
        assert self.cluster is not None and self.cluster.network is not None
        net = self.cluster.network
        size = self.rng.randint(1, (len(self.stores) - 1) // 2)
        minority = sorted(self.rng.sample(self.stores, size))
        majority = [s for s in self.stores if s not in minority]
        detail = f"stores {_ids(minority)} | {_ids(majority)}"
        await self._window(
            "partition", detail, stop, lambda: net.partition([minority, majority]), net.heal
        )

    async def _split(self, _stop: asyncio.Event) -> None:
        regions = await self._regions()
        starts = {r.start for r, _ in regions}
        keys = [k for k in self.keys.registers if k.encode() not in starts]
        if regions and keys:
            key = self.rng.choice(keys)
            await self._admin("split", f"at {key}", self.admin.split(key.encode()))

    async def _transfer(self, _stop: asyncio.Event) -> None:
        led = [(r, leader) for r, leader in await self._regions() if leader is not None]
        if not led:
            return
        region, leader = self.rng.choice(led)
        voters = [p.store_id for p in region.peers if p.role == VOTER and p.store_id != leader]
        if voters:
            to = self.rng.choice(voters)
            detail = f"region {region.id}: store {leader} -> {to}"
            await self._admin("transfer", detail, self.admin.transfer_leader(region.id, to))

    async def _move(self, _stop: asyncio.Event) -> None:
        regions = [r for r, _ in await self._regions()]
        if not regions:
            return
        region = self.rng.choice(regions)
        members = sorted(p.store_id for p in region.peers)
        spare = [s for s in self.stores if s not in members]
        if spare:
            src, dst = self.rng.choice(members), self.rng.choice(spare)
            detail = f"region {region.id}: store {src} -> {dst}"
            move = self.admin.move_peer(region.id, src, dst, timeout=MOVE_TIMEOUT)
            await self._admin("move", detail, move)

    async def _regions(self) -> list[tuple[Region, int | None]]:
        """The regions holding the run's keys (none if the directory cannot
        be read now: this fault is skipped)."""
        keys = [k.encode() for k in self.keys.registers]
        keys += [self.keys.set_range(s)[0] for s in self.keys.sets]
        try:
            regions = await self.admin.regions()
        except MultiraftError:
            return []
        return [(r, ld) for r, ld in regions if any(r.contains(k) for k in keys)]

    async def _admin(self, name: str, detail: str, call: Coroutine[Any, Any, Any]) -> None:
        """An admin request as a fault: its window is the call's; a refusal
        is part of its detail."""
        start = self.clock.now()
        try:
            await call
        except MultiraftError as e:
            detail += f" (refused: {type(e).__name__})"
        self._record(name, detail, start)


def _ids(stores: Sequence[int]) -> str:
    return ",".join(map(str, stores))
