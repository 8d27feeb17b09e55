"""What a verify run asks of the cluster, and what it saw: workers each do
one operation at a time on random keys and record every one as an `Op`.

Registers take get, put, cas and delete; every value written is unique in
the run, which keeps the checker's search small. A set is a prefix of keys:
`add e` puts the key `SET/%08d` % e, `read` scans the prefix, so an
acknowledged add that a later read misses shows as a lost write directly.
Each set lives alone in one region (`Keys.split_points`) and the nemesis
splits only at register keys, so a read is one region's linearizable scan.

A client's Timeout is "info" (it may have happened, at any time from its
start on), any other refusal "fail" (it did not happen). A worker whose
operation ended in "info" goes on as a new process, as in Jepsen: the old
one may still be in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..client import AsyncClient
from ..errors import MultiraftError, Timeout
from .history import Kind, Op, Outcome

GRACE = 5.0
"""Seconds past the client's own timeout before a worker stops waiting (it
never should: the client keeps its deadline)."""

REGISTER_MIX: tuple[tuple[Kind, int], ...] = (("get", 35), ("put", 25), ("cas", 30), ("delete", 10))
SET_MIX: tuple[tuple[Kind, int], ...] = (("add", 80), ("read", 20))
KEYS_PER_REGION = 4
"""The pre-split puts this many registers in each region."""


class Clock:
    """Seconds since the run began, on the monotonic clock."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0


@dataclass(frozen=True)
class Keys:
    """The run's registers and sets, under a prefix of its own: the
    registers start absent, also on a cluster that ran verify before."""

    registers: tuple[str, ...]
    sets: tuple[str, ...]

    @classmethod
    def make(cls, run_id: str, registers: int, sets: int) -> Keys:
        """verify-RUN/r00, ... and verify-RUN/s0, ..."""
        prefix = f"verify-{run_id}/"
        width = len(str(max(registers - 1, 0)))
        return cls(
            tuple(f"{prefix}r{i:0{width}d}" for i in range(registers)),
            tuple(f"{prefix}s{i}" for i in range(sets)),
        )

    @property
    def all(self) -> tuple[str, ...]:
        return self.registers + self.sets

    def element(self, set_name: str, e: int) -> bytes:
        return f"{set_name}/{e:08d}".encode()

    def set_range(self, set_name: str) -> tuple[bytes, bytes]:
        """[SET/, SET0): every key under SET/ and nothing else of the run."""
        start = f"{set_name}/".encode()
        return start, f"{set_name}0".encode()

    def split_points(self) -> list[bytes]:
        """Every KEYS_PER_REGION-th register, and each set's start and end:
        the workload's keys live in several regions, a set in one."""
        points = [k.encode() for k in self.registers[::KEYS_PER_REGION]]
        for s in self.sets:
            points.extend(self.set_range(s))
        return points


class Workload:
    """Random operations on `keys` by `workers` workers, at about `rate`
    ops/s together (None: as fast as they go); `ops`: all of them."""

    def __init__(
        self,
        keys: Keys,
        clock: Clock,
        *,
        workers: int,
        seed: int,
        rate: float | None = None,
    ) -> None:
        self.keys = keys
        self.clock = clock
        self.workers = workers
        self.seed = seed
        self.rate = rate
        self.ops: list[Op] = []
        self._processes = itertools.count(workers)
        """Fresh process numbers: for a worker after an "info", and final reads."""
        self._values = itertools.count(1)
        self._last: dict[str, str | None] = {}
        """Each register's latest value seen: cas expects it."""

    async def run(self, connect: Callable[[], AsyncClient], stop: asyncio.Event) -> None:
        """Until `stop` is set: each worker with its own client."""
        await asyncio.gather(*(self._worker(w, connect, stop) for w in range(self.workers)))

    async def _worker(
        self, w: int, connect: Callable[[], AsyncClient], stop: asyncio.Event
    ) -> None:
        rng = random.Random(f"{self.seed}/worker/{w}")
        process = w
        async with connect() as client:
            while not stop.is_set():
                key, f, value = self.choose(rng)
                op = await self.invoke(client, process, key, f, value)
                if op.type == "info":
                    process = next(self._processes)
                if self.rate is not None:
                    # Uniform 0..2x this worker's share: `rate` on average.
                    gap = rng.uniform(0, 2 * self.workers / self.rate)
                    await sleep_unless(stop, gap)

    def choose(self, rng: random.Random) -> tuple[str, Kind, Any]:
        """A random operation: its key, function and argument."""
        key = rng.choice(self.keys.all)
        mix = SET_MIX if key in self.keys.sets else REGISTER_MIX
        f = rng.choices([k for k, _ in mix], [w for _, w in mix])[0]
        value: Any = None
        if f == "put":
            value = str(next(self._values))
        elif f == "cas":
            value = [self._last.get(key), str(next(self._values))]
        elif f == "add":
            value = next(self._values)
        return key, f, value

    async def invoke(self, client: AsyncClient, process: int, key: str, f: Kind, value: Any) -> Op:
        """Run one operation and record it."""
        start = self.clock.now()
        result: Any = None
        outcome: Outcome = "ok"
        try:
            async with asyncio.timeout(client.timeout + GRACE):
                result = await self._call(client, key, f, value)
        except (Timeout, TimeoutError):
            outcome = "info"
        except MultiraftError:
            outcome = "fail"
        except asyncio.CancelledError:
            # The run was interrupted: it may or may not have happened.
            self.ops.append(Op(process, key, f, value, "info", None, start, self.clock.now()))
            raise
        op = Op(process, key, f, value, outcome, result, start, self.clock.now())
        self.ops.append(op)
        if outcome == "ok":
            self._learn(op)
        return op

    async def _call(self, client: AsyncClient, key: str, f: Kind, value: Any) -> Any:
        k = key.encode()
        if f == "get":
            got = await client.get(k)
            return None if got is None else got.decode()
        if f == "put":
            await client.put(k, value.encode())
        elif f == "delete":
            await client.delete(k)
        elif f == "cas":
            expected, new = (None if v is None else v.encode() for v in value)
            return await client.cas(k, expected, new)
        elif f == "add":
            await client.put(self.keys.element(key, value), str(value).encode())
        else:
            start, end = self.keys.set_range(key)
            rows = await client.scan(start, end)
            return sorted(int(row[len(start) :]) for row, _ in rows)
        return None

    def _learn(self, op: Op) -> None:
        if op.f == "get":
            self._last[op.key] = op.result
        elif op.f == "put":
            self._last[op.key] = op.value
        elif op.f == "delete":
            self._last[op.key] = None
        elif op.f == "cas" and op.result:
            self._last[op.key] = op.value[1]

    async def final_reads(self, client: AsyncClient, patience: float) -> None:
        """After the faults healed: read every key, each until one read is
        ok or `patience` seconds have passed (every attempt is recorded)."""
        deadline = self.clock.now() + patience

        async def read(key: str) -> None:
            f: Kind = "read" if key in self.keys.sets else "get"
            process = next(self._processes)
            while True:
                op = await self.invoke(client, process, key, f, None)
                if op.type == "ok" or self.clock.now() > deadline:
                    return
                if op.type == "info":
                    process = next(self._processes)
                await asyncio.sleep(0.2)

        await asyncio.gather(*(read(key) for key in self.keys.all))

    def missing_final_reads(self, since: float) -> Sequence[str]:
        """The keys without an ok read that began at or after `since`."""
        done = {
            op.key
            for op in self.ops
            if op.start >= since and op.type == "ok" and op.f in ("get", "read")
        }
        return [k for k in self.keys.all if k not in done]


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
