"""A verify run from start to verdict: the cluster (its own, or one given),
the workload and the nemesis for the duration, everything healed, a final
read of every key, then the history and faults written, checked, plotted
and reported. Returns the exit code: 0 only when every key's history is
linearizable (a set: no acknowledged add lost) and every key could be read
once the faults healed."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from ..client import AsyncClient, Client
from ..client.keys import KeyArgs
from ..errors import PermissionDenied
from ..protocol.region import VOTER
from . import netns
from .checker import check
from .cluster import VerifyCluster
from .history import Fault, Op, dump
from .nemesis import NEMESES, PROCESS_FAULTS, Nemesis
from .plot import latency_plot
from .report import exit_code, print_report, summary
from .workload import Clock, Keys, Workload, sleep_unless

REPLICAS = 3
"""Of every region on the cluster verify starts."""
ADMIN_TIMEOUT = 30.0
FINAL_PATIENCE = 60.0
"""Seconds the final reads may take, retries included."""
STOP_GRACE = 60.0
"""Seconds the workers and the nemesis get to wind down after the run."""
PROGRESS_EVERY = 10.0


class Unavailable(ValueError):
    """A nemesis asked for by name cannot run here; says why."""


@dataclass(frozen=True)
class VerifyConfig:
    """What `multiraft verify` was asked to do (see its --help)."""

    stores: int = 3
    duration: float = 60.0
    nemesis: tuple[str, ...] | None = None
    """None: every one that can run here."""
    workers: int = 8
    keys: int = 16
    sets: int = 2
    seed: int = 0
    out: Path = Path("verify-out")
    rate: float | None = 500.0
    timeout: float = 2.0
    """Per operation, the client's retries included."""
    budget: float = 10.0
    """Seconds the checker may spend on one key."""
    against: tuple[str, ...] | None = None
    """Endpoints of an existing cluster (no process faults)."""
    client_keys: KeyArgs = field(default_factory=lambda: KeyArgs())


def plan(
    asked: Sequence[str] | None,
    *,
    local: bool,
    stores: int,
    replicas: int,
    admin: bool = True,
) -> tuple[list[str], dict[str, str]]:
    """The nemeses to run and those left out, with why. `asked` None: every
    one that can run; one asked for by name that cannot: Unavailable.
    `admin`: whether the client's key may split, transfer and move."""
    wanted = list(NEMESES) if asked is None else list(dict.fromkeys(asked))
    reasons: dict[str, str] = {}
    for kind in wanted:
        why = _why_not(kind, local=local, stores=stores, replicas=replicas, admin=admin)
        if why is not None:
            reasons[kind] = why
    if asked is not None and reasons:
        kind, why = next(iter(reasons.items()))
        raise Unavailable(f"nemesis {kind} cannot run here: {why}")
    return [k for k in wanted if k not in reasons], reasons


def _why_not(kind: str, *, local: bool, stores: int, replicas: int, admin: bool) -> str | None:
    if kind in PROCESS_FAULTS:
        if not local:
            return "not with --against: verify does not run those stores"
        return netns.available() if kind == "partition" else None
    if not admin:
        return "needs an admin key (this one may not read the cluster's status)"
    if kind == "move" and stores <= replicas:
        return (
            f"no store without a replica to move one to ({stores} stores, "
            f"{replicas} replicas; use --stores 5)"
        )
    return None


def run(cfg: VerifyConfig, console: Console) -> int:
    """The whole run; raises Unavailable before starting anything if an
    asked-for nemesis cannot run."""
    keys = Keys.make(secrets.token_hex(3), cfg.keys, cfg.sets)
    client_keys: KeyArgs = {}
    if cfg.against is None:
        stores = list(range(1, cfg.stores + 1))
        kinds, skipped = plan(cfg.nemesis, local=True, stores=cfg.stores, replicas=REPLICAS)
    else:
        endpoints, client_keys = list(cfg.against), cfg.client_keys
        stores, replicas = _survey(endpoints, client_keys)
        kinds, skipped = plan(
            cfg.nemesis, local=False, stores=len(stores), replicas=replicas, admin=bool(stores)
        )
    cfg.out.mkdir(parents=True, exist_ok=True)
    _announce(console, cfg, kinds, skipped)
    with contextlib.ExitStack() as stack:
        cluster = None
        if cfg.against is None:
            network = None
            if "partition" in kinds:
                network = stack.enter_context(netns.Network(cfg.stores))
            console.print(f"starting {cfg.stores} stores ({_where(network)})", markup=False)
            cluster = stack.enter_context(VerifyCluster(cfg.stores, cfg.out / "logs", network))
            endpoints = cluster.endpoints
        session = Session(cfg, keys, kinds, endpoints, client_keys, stores, console, cluster)
        try:
            ops, faults = asyncio.run(session.run())
        except (KeyboardInterrupt, SystemExit):
            session.save_partial(cfg.out)
            raise
    dump(ops, cfg.out / "history.jsonl")
    dump(faults, cfg.out / "faults.jsonl")
    where = f"{cfg.stores} stores" if cfg.against is None else f"against {cfg.against[0]}"
    title = f"multiraft verify: {where}, {', '.join(kinds) or 'no faults'}"
    code = check_and_report(ops, faults, console, cfg.budget, cfg.out / "latency.png", title)
    if session.missing:
        # Without them a write lost at the end would go unseen: not a pass.
        console.print(
            f"no final read succeeded in {FINAL_PATIENCE:g} s after healing "
            f"for: {', '.join(session.missing)}",
            style="bold red",
            markup=False,
        )
        return code or 1
    return code


def check_and_report(
    ops: list[Op],
    faults: list[Fault],
    console: Console,
    budget: float,
    plot: Path | None,
    title: str = "",
) -> int:
    """Check every key, plot (when matplotlib is there), print the report
    and the summary line; the exit code."""
    verdicts = check(ops, budget)
    if plot is not None:
        try:
            latency_plot(ops, faults, plot, title)
        except RuntimeError as e:  # no matplotlib: the verdict stands without it
            console.print(f"no plot: {e}", markup=False)
        else:
            console.print(f"latency plot: {plot}", markup=False)
    print_report(console, ops, verdicts, faults)
    console.print(summary(ops, verdicts, faults))
    return exit_code(verdicts)


def _announce(
    console: Console, cfg: VerifyConfig, kinds: list[str], skipped: dict[str, str]
) -> None:
    console.print(
        f"verify: seed {cfg.seed}, {cfg.duration:g} s, {cfg.workers} workers, "
        f"{cfg.keys} registers + {cfg.sets} sets, history in {cfg.out}",
        markup=False,
    )
    console.print(f"nemeses: {', '.join(kinds) or 'none'}")
    for kind, why in skipped.items():
        console.print(f"  skipped {kind}: {why}", markup=False)


def _where(network: netns.Network | None) -> str:
    if network is None:
        return "on loopback"
    return f"one network namespace each, {network.subnet}.0/24"


def _survey(endpoints: list[str], client_keys: KeyArgs) -> tuple[list[int], int]:
    """An existing cluster's store ids and its most replicated region's
    voters; no stores if the key is not an admin's."""
    with Client(endpoints, timeout=ADMIN_TIMEOUT, **client_keys) as c:
        try:
            status = c.status()
        except PermissionDenied:
            return [], REPLICAS
    stores = sorted(int(s["id"]) for s in status["stores"])
    voters = (sum(p.role == VOTER for p in r.peers) for r, _ in status["regions"])
    return stores, max(voters, default=REPLICAS)


class Session:
    """The asynchronous part of a run: pre-split, workload + nemesis for
    the duration, heal, final reads."""

    def __init__(
        self,
        cfg: VerifyConfig,
        keys: Keys,
        kinds: list[str],
        endpoints: list[str],
        client_keys: KeyArgs,
        stores: list[int],
        console: Console,
        cluster: VerifyCluster | None = None,
    ) -> None:
        """`stores`: the cluster's store ids; `cluster`: when verify runs it."""
        self.cfg = cfg
        self.keys = keys
        self.kinds = kinds
        self.endpoints = endpoints
        self.client_keys = client_keys
        self.stores = stores
        self.console = console
        self.cluster = cluster
        self.missing: Sequence[str] = ()
        """Keys without an ok final read."""
        self.workload: Workload | None = None
        self.nemesis: Nemesis | None = None

    def save_partial(self, out: Path) -> None:
        """An interrupted run: write what was recorded (to check with
        `verify check`), and say where."""
        if self.workload is None or self.nemesis is None:
            return
        dump(self.workload.ops, out / "history.jsonl")
        dump(self.nemesis.faults, out / "faults.jsonl")
        self.console.print(
            f"interrupted: {len(self.workload.ops):,} ops so far in {out / 'history.jsonl'}",
            markup=False,
        )

    def client(self, timeout: float) -> AsyncClient:
        return AsyncClient(self.endpoints, timeout, **self.client_keys)

    async def run(self) -> tuple[list[Op], list[Fault]]:
        cfg = self.cfg
        async with self.client(ADMIN_TIMEOUT) as admin:
            if self.cluster is not None or set(self.kinds) - set(PROCESS_FAULTS):
                await admin.split_many(self.keys.split_points())
            clock = Clock()
            workload = Workload(self.keys, clock, workers=cfg.workers, seed=cfg.seed, rate=cfg.rate)
            nemesis = Nemesis(
                self.kinds, clock, admin, self.keys, self.stores,
                seed=cfg.seed, cluster=self.cluster, log=self._show_fault,
            )  # fmt: skip
            self.workload, self.nemesis = workload, nemesis
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(workload.run(lambda: self.client(cfg.timeout), stop)),
                asyncio.create_task(nemesis.run(stop)),
                asyncio.create_task(self._progress(clock, workload.ops, nemesis.faults, stop)),
            ]
            try:
                await asyncio.wait(tasks, timeout=cfg.duration, return_when=asyncio.FIRST_EXCEPTION)
                stop.set()
                async with asyncio.timeout(cfg.timeout + STOP_GRACE):
                    await asyncio.gather(*tasks)
            finally:
                stop.set()
                for t in tasks:
                    t.cancel()
                if self.cluster is not None:
                    self.cluster.heal()
            healed = clock.now()
            self.console.print(f"{healed:6.1f}s  healed; final reads")
            async with self.client(cfg.timeout * 2) as final:
                await workload.final_reads(final, FINAL_PATIENCE)
            self.missing = workload.missing_final_reads(healed)
        return workload.ops, nemesis.faults

    def _show_fault(self, f: Fault) -> None:
        line = f"{f.start:6.1f}s  {f.name} {f.detail} ({f.end - f.start:.1f} s)"
        self.console.print(line, markup=False)

    async def _progress(
        self, clock: Clock, ops: list[Op], faults: list[Fault], stop: asyncio.Event
    ) -> None:
        while True:
            await sleep_unless(stop, PROGRESS_EVERY)
            if stop.is_set():
                return
            self.console.print(f"{clock.now():6.1f}s  {_counts(ops)}, {len(faults)} faults")


def _counts(ops: Iterable[Op]) -> str:
    n = {"ok": 0, "fail": 0, "info": 0}
    for op in ops:
        n[op.type] += 1
    return f"{sum(n.values()):,} ops (ok {n['ok']:,}, fail {n['fail']:,}, info {n['info']:,})"
