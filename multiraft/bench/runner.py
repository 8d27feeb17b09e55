"""The benchmark from start to end: prepare the cluster (pre-split, spread
leaders, preload), run the load in worker processes, merge what they
measured into one result (the `bench --json` object)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing as mp
import os
import queue
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from multiraft.client.keys import KeyArgs

from ..client import Client
from ..errors import MultiraftError
from .cluster import LocalCluster
from .histogram import Latencies
from .worker import WorkerResult, WorkerSpec, preload_worker, run_worker
from .workload import OpMix, split_keys

Progress = Callable[[int, float], None]
"""Called about 5 times a second with (ops so far, seconds into the window)."""
Log = Callable[[str], None]

SETUP_TIMEOUT = 120.0
OPS_RUN_LIMIT = 3600.0
"""Bound on an --ops run, which has no duration of its own."""
POLL = 0.2
CLIENTS_PER_PROCESS = 512
"""Requests in flight per load-generator process when `--processes` is not
given. One process (asyncio, one core at most) keeps up with 512 on this
project's 2-core machine, and fewer processes mean bigger request and
reply batches: 256 puts in flight from one process went 8% faster than
from two (20,155 / 20,460 against 18,752 / 18,555 puts/s, alternating),
while 1,024 need two (37,754 / 37,339 against 27,244 / 26,570 from one)."""
RATE_PER_PROCESS = 20_000.0
"""Ops/s per load-generator process of a paced run (`--rate`) when
`--processes` is not given: what is in flight then follows the rate, not
`--clients`. Puts paced at 19,000/s with 1,024 clients had a p99 of 38-39
ms from one process and 49-52 ms from two (alternating), the one using
0.48 of a core."""


class WorkerFailed(RuntimeError):
    """A load-generator process reported an error instead of a result."""


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run, as the command line describes it."""

    workload: str = "put"
    duration: float | None = 10.0
    ops: int | None = None
    regions: int = 16
    clients: int = 64
    processes: int | None = None
    """Load-generator processes (None: `CLIENTS_PER_PROCESS` requests in
    flight each, or `RATE_PER_PROCESS` ops/s of a paced run; at most one
    per core)."""
    value_size: int = 100
    keys: int = 100_000
    distribution: str = "uniform"
    read_ratio: float = 0.5
    warmup: float = 1.0
    scan_limit: int = 10
    timeout: float = 10.0
    split: bool = True
    """Pre-split into `regions` (the CLI always does on its local cluster)."""
    rate: float | None = None
    """Target ops/s over all processes (None: as fast as the clients go)."""
    store_args: tuple[str, ...] = ()
    """Extra `store start` flags for the local cluster (e.g. --no-hibernate-regions)."""
    secure: bool = False
    """Start the local cluster with keys (every connection CURVE)."""
    client_keys: KeyArgs = field(default_factory=lambda: KeyArgs())
    """Client(..., **this): the key and cluster keys of a secure cluster."""

    def generator_processes(self) -> int:
        if self.processes is not None:
            return max(1, self.processes)
        if self.rate is not None:
            wanted = math.ceil(self.rate / RATE_PER_PROCESS)
        else:
            wanted = math.ceil(self.clients / CLIENTS_PER_PROCESS)
        return max(1, min(os.cpu_count() or 1, wanted))

    def worker_specs(self, cluster: Sequence[str]) -> list[WorkerSpec]:
        """Clients and ops spread over processes as evenly as they go."""
        procs = max(1, min(self.generator_processes(), self.clients))
        specs = []
        for i in range(procs):
            clients = _share(self.clients, procs, i)
            ops = None if self.ops is None else _share(self.ops, procs, i)
            specs.append(
                WorkerSpec(
                    index=i,
                    cluster=tuple(cluster),
                    workload=self.workload,
                    keys=self.keys,
                    clients=clients,
                    value_size=self.value_size,
                    distribution=self.distribution,
                    read_ratio=self.read_ratio,
                    warmup=self.warmup,
                    duration=None if self.ops is not None else self.duration,
                    ops=ops,
                    scan_limit=self.scan_limit,
                    seed=int.from_bytes(os.urandom(4), "big") + i,
                    timeout=self.timeout,
                    rate=None if self.rate is None else self.rate * clients / self.clients,
                    client_keys=self.client_keys,
                )
            )
        return specs


def _share(total: int, parts: int, i: int) -> int:
    return total // parts + (1 if i < total % parts else 0)


def run_bench(
    cfg: BenchConfig,
    cluster: Sequence[str] | None = None,
    progress: Progress | None = None,
    log: Log | None = None,
) -> dict[str, Any]:
    """Run one benchmark; without `cluster`, on a local 3-store cluster that
    lives only for this run. Returns the result object."""
    say = log or (lambda _msg: None)
    with _cluster(cluster, say, cfg) as (endpoints, keys):
        cfg = dataclasses.replace(cfg, client_keys=keys)
        prepare(cfg, endpoints, split=cfg.split, log=say)
        results = run_load(cfg, endpoints, progress)
        with Client(endpoints, timeout=cfg.timeout, **keys) as c:
            status = c.status()
    return summarize(cfg, results, status, local=cluster is None)


@contextlib.contextmanager
def _cluster(
    cluster: Sequence[str] | None, log: Log, cfg: BenchConfig
) -> Iterator[tuple[list[str], KeyArgs]]:
    """The endpoints and client keys of the cluster to load."""
    if cluster is not None:
        yield list(cluster), cfg.client_keys
        return
    mode = "CURVE" if cfg.secure else "plain"
    log(f"starting a local 3-store cluster (fsync on, 3 replicas, {mode})")
    with LocalCluster(extra_args=cfg.store_args, secure=cfg.secure) as local:
        log(f"stores up: {', '.join(local.endpoints)} (data in {local.root})")
        yield local.endpoints, local.client_keys


def prepare(cfg: BenchConfig, endpoints: Sequence[str], split: bool, log: Log) -> None:
    """Pre-split, spread leaders evenly over the stores, preload keys."""
    with Client(endpoints, timeout=cfg.timeout, **cfg.client_keys) as c:
        if split and cfg.regions > 1:
            t = time.monotonic()
            c.split_many(split_keys(cfg.keys, cfg.regions))
            log(f"split into {cfg.regions} regions in {time.monotonic() - t:.1f} s")
            balance_leaders(c, log)
    if OpMix(cfg.workload, cfg.read_ratio).needs_preload:
        t = time.monotonic()
        preload(cfg, endpoints)
        log(f"preloaded {cfg.keys} keys in {time.monotonic() - t:.1f} s")


def balance_leaders(c: Client, log: Log, timeout: float = SETUP_TIMEOUT) -> None:
    """Give every store an equal share of leaders (a split leaves them all
    on the splitting store; the stores' own balancer moves one per round)."""
    deadline = time.monotonic() + timeout
    while True:
        entries = sorted(c.regions(), key=lambda e: e[0].start)
        stores = sorted({p.store_id for r, _ in entries for p in r.peers})
        if all(leader is not None for _, leader in entries):
            want = {r.id: stores[k % len(stores)] for k, (r, _) in enumerate(entries)}
            moves = [(r.id, want[r.id]) for r, leader in entries if leader != want[r.id]]
            if not moves:
                log(f"leaders spread over stores {stores}")
                return
            for region_id, store_id in moves:
                with contextlib.suppress(MultiraftError):
                    c.transfer_leader(region_id, store_id)
        if time.monotonic() > deadline:
            log("leaders not evenly spread in time; going on")
            return
        time.sleep(0.5)


def preload(cfg: BenchConfig, endpoints: Sequence[str]) -> None:
    """Write every key once, in parallel worker processes."""
    procs = cfg.generator_processes()
    bounds = [cfg.keys * i // procs for i in range(procs + 1)]
    per_proc = max(1, cfg.clients // procs)
    specs = [
        (tuple(endpoints), bounds[i], bounds[i + 1], cfg.value_size, per_proc, cfg.client_keys)
        for i in range(procs)
    ]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    workers = [ctx.Process(target=preload_worker, args=(s, results)) for s in specs]
    _collect(workers, results, SETUP_TIMEOUT + cfg.keys / 100, on_poll=None)


def run_load(
    cfg: BenchConfig, endpoints: Sequence[str], progress: Progress | None = None
) -> list[WorkerResult]:
    """Start the worker processes together, report progress, gather results."""
    specs = cfg.worker_specs(endpoints)
    ctx = mp.get_context("spawn")
    counts = ctx.Array("q", len(specs), lock=False)
    ready, go = ctx.Value("i", 0), ctx.Event()
    results = ctx.Queue()
    workers = [
        ctx.Process(target=run_worker, args=(s, counts, (ready, go), results)) for s in specs
    ]
    limit = OPS_RUN_LIMIT if cfg.ops is not None else (cfg.duration or 0) + 2 * cfg.timeout
    start: list[float] = []

    def on_poll() -> None:
        if not start and ready.value == len(specs):
            go.set()  # every worker has its routes: start the clocks together
            start.append(time.monotonic() + cfg.warmup)
        if progress is not None and start:
            progress(sum(counts), max(0.0, time.monotonic() - start[0]))

    return _collect(workers, results, SETUP_TIMEOUT + cfg.warmup + limit, on_poll)


def _collect(
    workers: list[Any],
    results: Any,
    timeout: float,
    on_poll: Callable[[], None] | None,
) -> list[Any]:
    """Start `workers`, wait (bounded) for one result each, and make sure
    every one of them is gone on the way out, whatever happens."""
    try:
        for w in workers:
            w.start()
        got: list[WorkerResult] = []
        deadline = time.monotonic() + timeout
        while len(got) < len(workers):
            if time.monotonic() > deadline:
                raise TimeoutError(f"load generators did not finish in {timeout:.0f} s")
            with contextlib.suppress(queue.Empty):
                item = results.get(timeout=POLL)
                if isinstance(item, str):
                    raise WorkerFailed(item)
                got.append(item)
            if on_poll is not None:
                on_poll()
    except BaseException:
        _stop(workers, grace=0.0)
        raise
    _stop(workers, grace=5.0)
    return got


def _stop(workers: list[Any], grace: float) -> None:
    """Join each started worker, killing what is still there after `grace`."""
    for w in workers:
        if w.pid is None:
            continue
        w.join(timeout=grace)
        if w.is_alive():
            w.kill()
            w.join(timeout=5)


def summarize(
    cfg: BenchConfig, results: list[WorkerResult], status: dict[str, Any], local: bool
) -> dict[str, Any]:
    """The `bench --json` object (INTERFACE.md's keys first)."""
    lat = Latencies.merge(r.latencies for r in results)
    ops = sum(r.ops for r in results)
    wall = max((r.window_s for r in results), default=0.0)
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r.errors)
    out: dict[str, Any] = {
        "workload": cfg.workload,
        "ops": ops,
        "ops_per_sec": round(ops / wall, 1) if wall > 0 else 0.0,
        "latency_ms": lat.summary_ms(),
        "errors": dict(sorted(errors.items())),
        "regions": len(status["regions"]),
        "clients": cfg.clients,
        "processes": len(results),
        "value_size": cfg.value_size,
        "duration_s": round(wall, 3),
        "client_cpu": round(sum(r.cpu_s for r in results) / wall, 3) if wall > 0 else 0.0,
        "leaders_per_store": {
            str(s["id"]): s.get("leaders", 0) for s in sorted(status["stores"], key=_id)
        },
        "keys": cfg.keys,
        "distribution": cfg.distribution,
        "warmup_s": cfg.warmup,
        "cluster": "local" if local else "given",
        "cpu_count": os.cpu_count(),
    }
    if cfg.rate is not None:
        out["rate"] = cfg.rate
    if cfg.workload == "mixed":
        out["read_ratio"] = cfg.read_ratio
    if cfg.workload == "cas":
        out["cas_misses"] = sum(r.cas_misses for r in results)
    return out


def _id(store: dict[str, Any]) -> int:
    return int(store.get("id", 0))
