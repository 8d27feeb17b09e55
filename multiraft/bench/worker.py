"""One load-generator process: an AsyncClient with many coroutines, each
issuing one operation after another, so `clients` requests are in flight at
once over the client's one socket per store. Several of these run side by
side (multiprocessing) so that the generator is not the bottleneck.

Each process records latencies of the operations that complete inside the
measuring window (after the warmup) into its own histogram, and its CPU
seconds over that window; the parent merges them.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvloop

from multiraft.client.keys import KeyArgs

from ..client import AsyncClient
from .histogram import Latencies
from .workload import KeyChooser, OpMix, key_of

T = TypeVar("T")

START_TIMEOUT = 120.0
"""Seconds a worker waits for the go signal (all siblings ready) before giving up."""
PACE_TICK = 0.005
"""Granularity of a paced run's sleeps (seconds). At 1 ms the generator
woke a thousand times a second per process to send a few requests each,
and its own lag (two processes next to three stores on two cores) put
the paced get p99 at 78-95 ms; at 5 ms it is 31 ms, the up to 5 ms a
request waits for its tick included."""
DRAIN_GRACE = 5.0
"""Seconds past the window (beyond the client timeout) to wait for stragglers."""


@dataclass(frozen=True)
class WorkerSpec:
    """Everything one worker process needs (picklable for spawn)."""

    index: int
    cluster: tuple[str, ...]
    workload: str
    keys: int
    clients: int
    value_size: int
    distribution: str = "uniform"
    read_ratio: float = 0.5
    warmup: float = 0.0
    duration: float | None = 10.0
    ops: int | None = None
    scan_limit: int = 10
    seed: int = 0
    timeout: float = 10.0
    rate: float | None = None
    """This worker's ops/s target (None: each client goes as fast as it can)."""
    client_keys: KeyArgs = field(default_factory=lambda: KeyArgs())
    """AsyncClient(..., **this) on a secure cluster."""


@dataclass
class WorkerResult:
    """What a worker sends back: counts, errors, encoded latencies, CPU."""

    index: int
    ops: int = 0
    window_s: float = 0.0
    cpu_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    cas_misses: int = 0
    latencies: bytes = b""


def preload_value(index: int, size: int) -> bytes:
    """The value preloading gives key `index`: deterministic, `size` bytes,
    so a cas workload knows what to expect without reading first."""
    seed = b"v%d." % index
    return (seed * (size // len(seed) + 1))[:size]


class Window:
    """The measuring window: after `warmup` seconds, for `duration` seconds
    (or until the op quota is used when duration is None)."""

    def __init__(self, warmup: float, duration: float | None) -> None:
        self.t0 = time.monotonic() + warmup
        self.t1 = None if duration is None else self.t0 + duration

    def open(self, now: float) -> bool:
        return now >= self.t0

    def over(self, now: float) -> bool:
        return self.t1 is not None and now >= self.t1


class Pacer:
    """Start times spaced 1/rate apart, handed to whichever client asks next.

    Latency is measured from the scheduled start, not the actual one, so a
    cluster that falls behind the rate shows it as latency (no coordinated
    omission). Clients sleep in ticks of PACE_TICK: all those due in one
    tick wake in the same event-loop pass, so their requests share frames
    as requests of many independent clients arriving together would.
    """

    def __init__(self, rate: float, t0: float) -> None:
        self.interval = 1.0 / rate
        self.next = t0
        self._sleepers: dict[int, list[asyncio.Future[None]]] = {}

    def slot(self) -> float:
        start = self.next
        self.next += self.interval
        return start

    async def sleep_until(self, when: float) -> None:
        if when <= time.monotonic():
            return
        tick = math.ceil(when / PACE_TICK)
        loop = asyncio.get_running_loop()
        sleepers = self._sleepers.get(tick)
        if sleepers is None:
            sleepers = self._sleepers[tick] = []
            loop.call_later(tick * PACE_TICK - time.monotonic(), self._wake, tick)
        fut = loop.create_future()
        sleepers.append(fut)
        await fut

    def _wake(self, tick: int) -> None:
        for fut in self._sleepers.pop(tick):
            if not fut.done():
                fut.set_result(None)


class Load:
    """The coroutines of one worker and what they measured."""

    def __init__(self, spec: WorkerSpec, client: AsyncClient, progress: Any) -> None:
        self.spec = spec
        self.client = client
        self.progress = progress
        self.mix = OpMix(spec.workload, spec.read_ratio)
        self.keys = KeyChooser(spec.keys, spec.distribution, seed=spec.seed)
        self.rng = random.Random(spec.seed)
        self.value = os.urandom(spec.value_size)
        self.lat = Latencies()
        self.result = WorkerResult(spec.index)
        self.quota = spec.ops
        self.guess: dict[int, bytes] = {}
        self.cas_seq = 0

    async def run(self) -> WorkerResult:
        window = Window(self.spec.warmup, self.spec.duration)
        cpu = asyncio.create_task(self._cpu_at(window.t0))
        rate = self.spec.rate
        pacer = None if rate is None else Pacer(rate, time.monotonic())
        await asyncio.gather(*(self._client_loop(window, pacer) for _ in range(self.spec.clients)))
        start_cpu = await cpu
        end = time.monotonic()
        self.result.cpu_s = _cpu_now() - start_cpu
        self.result.window_s = (window.t1 or end) - window.t0 if end > window.t0 else 0.0
        self.result.latencies = self.lat.encode()
        return self.result

    async def _cpu_at(self, t0: float) -> float:
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        return _cpu_now()

    async def _client_loop(self, window: Window, pacer: Pacer | None) -> None:
        while True:
            now = time.monotonic()
            if pacer is not None:
                start = pacer.slot()
                await pacer.sleep_until(start)
                now = start
            if window.over(now):
                return
            measured = window.open(now)
            if measured and self.quota is not None:
                if self.quota <= 0:
                    return
                self.quota -= 1
            error = await self._one_op()
            done = time.monotonic()
            if not measured or (window.t1 is not None and done > window.t1):
                continue
            if error is None:
                self.lat.record(done - now)
                self.result.ops += 1
                self.progress[self.spec.index] = self.result.ops
            else:
                self.result.errors[error] += 1

    async def _one_op(self) -> str | None:
        """Run one operation; returns the error kind or None."""
        op = self.mix.next_op(self.rng)
        try:
            if op == "put":
                await self.client.put(self.keys.key(), self.value)
            elif op == "get":
                await self.client.get(self.keys.key())
            elif op == "scan":
                await self.client.scan(self.keys.key(), b"", limit=self.spec.scan_limit)
            else:
                await self._cas()
        except Exception as e:  # noqa: BLE001 - every failure is counted by kind
            return type(e).__name__
        return None

    async def _cas(self) -> None:
        """Compare against the last value this worker saw for the key; on a
        miss (another worker changed it) count it and learn the new value."""
        i = self.keys.index()
        key = key_of(i)
        expected = self.guess.get(i, preload_value(i, self.spec.value_size))
        self.cas_seq += 1
        new = (b"c%d.%d." % (self.spec.index, self.cas_seq) + self.value)[: self.spec.value_size]
        if await self.client.cas(key, expected, new):
            self.guess[i] = new
            return
        self.result.cas_misses += 1
        current = await self.client.get(key)
        if current is not None:
            self.guess[i] = current


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on uvloop's event loop: the generator then takes about a
    tenth less CPU per request from the machine it shares with the stores
    (26 against 30 µs per put, `bench --json`'s client_cpu)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _cpu_now() -> float:
    t = os.times()
    return t.user + t.system


async def _main(spec: WorkerSpec, progress: Any, start: tuple[Any, Any]) -> WorkerResult:
    ready, go = start
    async with AsyncClient(list(spec.cluster), timeout=spec.timeout, **spec.client_keys) as client:
        await client.regions()  # warm the route cache before the clock starts
        with ready.get_lock():
            ready.value += 1
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, go.wait, START_TIMEOUT):
            raise TimeoutError("no go signal from the parent")
        load = Load(spec, client, progress)
        limit = _run_limit(spec)
        async with asyncio.timeout(limit):
            return await load.run()


def _run_limit(spec: WorkerSpec) -> float | None:
    """A bound on a duration run (ops runs are bounded by the caller)."""
    if spec.duration is None:
        return None
    return spec.warmup + spec.duration + spec.timeout + DRAIN_GRACE


def run_worker(spec: WorkerSpec, progress: Any, start: tuple[Any, Any], results: Any) -> None:
    """Process entry point: say ready, wait for the go signal, run the load,
    and put a WorkerResult (or the error text) on `results`."""
    try:
        results.put(_run(_main(spec, progress, start)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which decides
        results.put(f"worker {spec.index}: {type(e).__name__}: {e}")


async def _preload(
    cluster: tuple[str, ...], lo: int, hi: int, size: int, clients: int, keys: KeyArgs
) -> int:
    async with AsyncClient(list(cluster), timeout=30.0, **keys) as client:
        await client.regions()
        todo = iter(range(lo, hi))

        async def one_client() -> None:
            for i in todo:
                await client.put(key_of(i), preload_value(i, size))

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return hi - lo


PreloadSpec = tuple[tuple[str, ...], int, int, int, int, KeyArgs]
"""(cluster, lo, hi, value size, clients, client keys)."""


def preload_worker(spec: PreloadSpec, results: Any) -> None:
    """Process entry point: write keys [lo, hi) with their preload values."""
    try:
        results.put(_run(_preload(*spec)))
    except BaseException as e:  # noqa: BLE001
        results.put(f"preload {spec[1]}-{spec[2]}: {type(e).__name__}: {e}")
