"""`multiraft verify`: a Jepsen-style check of the cluster's promises that
anyone can run on their machine, and `verify check FILE` to check a
history again."""

from __future__ import annotations

import random
import time
from pathlib import Path

import click
from rich.console import Console

from multiraft.client.connection import parse_cluster
from multiraft.errors import MultiraftError
from multiraft.verify.history import load, load_faults
from multiraft.verify.nemesis import NEMESES
from multiraft.verify.netns import NetnsError
from multiraft.verify.runner import Unavailable, VerifyConfig, check_and_report, run

from .common import CommandFailed, Duration, client_keys, key_options, sigterm_raises

POSITIVE = click.IntRange(min=1)
budget_option = click.option(
    "--budget",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds the checker may spend on one key before it says 'unknown'.",
)


class Nemeses(click.ParamType):
    """Comma-separated nemesis names, "all" (None: every one that can run
    here) or "none"."""

    name = "nemeses"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...] | None:
        if value is None or isinstance(value, tuple):
            return value
        names = [n.strip() for n in str(value).split(",") if n.strip()]
        if names == ["all"]:
            return None
        if names == ["none"]:
            return ()
        unknown = [n for n in names if n not in NEMESES]
        if unknown or not names:
            self.fail(f"{value!r}: choose from {', '.join(NEMESES)}, all or none", param, ctx)
        return tuple(names)


@click.group(invoke_without_command=True)
@click.option(
    "--stores",
    type=click.IntRange(3, 9),
    default=3,
    show_default=True,
    help="Stores of the cluster verify starts (3 replicas of every region).",
)
@click.option(
    "--duration", type=Duration(), default=60.0, show_default=True, help="Seconds of faults."
)
@click.option(
    "--nemesis",
    type=Nemeses(),
    default="all",
    show_default=True,
    help="Faults, comma-separated, or all / none. kill: SIGKILL a store, restart it; pause: "
    "SIGSTOP, SIGCONT; partition: cut stores apart (a network namespace per store: needs "
    "root and `ip`); split; transfer (leadership); move (a replica: needs a store holding "
    "none, so --stores 5, every region having 3). 'all': every one that can run here, "
    "the others left out with the reason; one named that cannot run is refused.",
)
@click.option("--workers", type=POSITIVE, default=8, show_default=True, help="Concurrent clients.")
@click.option("--keys", type=POSITIVE, default=16, show_default=True, help="Registers.")
@click.option("--sets", type=click.IntRange(min=0), default=2, show_default=True, help="Sets.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=500.0,
    show_default=True,
    help="Operations per second the workers aim at together (histories stay checkable).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    help="Seconds per operation, retries included, before it counts as unknown ('info'): "
    "shorter than most faults, so that some outcomes are in doubt and get checked as such.",
)
@budget_option
@click.option("--seed", type=int, default=None, help="RNG seed [default: random, printed].")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for history.jsonl, faults.jsonl, latency.png and store logs "
    "[default: ./verify-YYYYmmdd-HHMMSS].",
)
@click.option(
    "--against",
    metavar="HOST:PORT[,...]",
    help="Verify this running cluster instead of starting one (only the faults an "
    "admin client can cause: split, transfer, move).",
)
@key_options("With --against: the client's")
@click.pass_context
def verify(
    ctx: click.Context, stores: int, duration: float, nemesis: tuple[str, ...] | None,
    workers: int, keys: int, sets: int, rate: float, timeout: float, budget: float,
    seed: int | None, out: Path | None, against: str | None, key_file: str | None,
    cluster_keys: str | None,
) -> int | None:  # fmt: skip
    """Run register and set workloads on a cluster while injecting faults,
    then check that every key's history is linearizable.

    Without --against it starts its own local cluster (in a temp dir,
    removed afterwards). It writes the history, the faults, a latency plot
    and the store logs to --out, prints a table per key and one summary
    line, and exits 0 only if every key checked out: 1 if a key failed, 3
    if the checker could not decide one in --budget (2 is a usage error).
    """
    if ctx.invoked_subcommand is not None:
        return None
    cfg = VerifyConfig(
        stores=stores, duration=duration, nemesis=nemesis, workers=workers, keys=keys,
        sets=sets, seed=random.randrange(2**32) if seed is None else seed,
        out=out or Path(time.strftime("verify-%Y%m%d-%H%M%S")), rate=rate,
        timeout=timeout, budget=budget, against=_endpoints(against),
        client_keys=client_keys(key_file, cluster_keys, against),
    )  # fmt: skip
    with sigterm_raises():
        try:
            return run(cfg, Console(soft_wrap=True))
        except Unavailable as e:
            raise click.UsageError(str(e)) from None
        except (MultiraftError, NetnsError, RuntimeError, TimeoutError) as e:
            raise CommandFailed(f"{type(e).__name__}: {e}") from None


@verify.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--faults",
    "faults_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Faults to shade in the plot [default: faults.jsonl next to FILE, if there].",
)
@budget_option
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG here.")
def check(file: Path, faults_file: Path | None, budget: float, plot: Path | None) -> int:
    """Check a history file (JSON lines, as verify writes) again."""
    if faults_file is None and (file.parent / "faults.jsonl").exists():
        faults_file = file.parent / "faults.jsonl"
    try:
        ops = load(file)
        faults = load_faults(faults_file) if faults_file is not None else []
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="FILE") from None
    return check_and_report(ops, faults, Console(soft_wrap=True), budget, plot, title=str(file))


def _endpoints(against: str | None) -> tuple[str, ...] | None:
    if against is None:
        return None
    try:
        return tuple(parse_cluster(against))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--against'") from None
