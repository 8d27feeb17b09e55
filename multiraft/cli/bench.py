"""`multiraft bench`: load a cluster and report throughput and latency.

Without --cluster it brings up its own 3-store cluster (fsync on, 3
replicas) in a temp dir and removes it afterwards, so one command gives a
number anyone can reproduce.
"""

from __future__ import annotations

import json

import click

from multiraft.bench.report import ProgressView, render
from multiraft.bench.runner import BenchConfig, run_bench
from multiraft.bench.workload import DISTRIBUTIONS, WORKLOADS
from multiraft.client.connection import parse_cluster
from multiraft.errors import MultiraftError

from .common import CommandFailed, client_keys, key_options, sigterm_raises

POSITIVE = click.IntRange(min=1)
DEFAULT_REGIONS = 16


@click.command()
@click.option("--workload", type=click.Choice(WORKLOADS), default="put", show_default=True)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to measure (after --warmup).",
)
@click.option("--ops", type=POSITIVE, default=None, help="Measure this many ops instead.")
@click.option("--warmup", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option(
    "--regions",
    type=POSITIVE,
    default=None,
    help="Pre-split into this many regions [default: 16 on the local cluster; "
    "with --cluster, no split unless given].",
)
@click.option(
    "--clients",
    type=POSITIVE,
    default=1024,
    show_default=True,
    help="Requests in flight, over all processes (the default is near the "
    "peak on a small machine; fewer trade throughput for latency).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Target ops/s over all clients [default: as fast as they go]. Latency "
    "then counts from each op's scheduled start.",
)
@click.option(
    "--processes",
    type=POSITIVE,
    default=None,
    help="Load-generator processes [default: one per 512 requests in flight, or per "
    "20,000 ops/s with --rate; at most one per core].",
)
@click.option("--value-size", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--keys", type=POSITIVE, default=100_000, show_default=True, help="Key count.")
@click.option(
    "--distribution", type=click.Choice(DISTRIBUTIONS), default="uniform", show_default=True
)
@click.option(
    "--read-ratio",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Share of gets in the mixed workload.",
)
@click.option(
    "--scan-limit",
    type=POSITIVE,
    default=10,
    show_default=True,
    help="Rows per scan in the scan workload.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Per-operation client timeout, retries included.",
)
@click.option(
    "--hibernate-regions/--no-hibernate-regions",
    default=True,
    show_default=True,
    help="Start the local cluster's stores with idle regions allowed to go quiet.",
)
@click.option(
    "--read-mode",
    type=click.Choice(["lease", "read-index"]),
    default="lease",
    show_default=True,
    help="Start the local cluster's stores with this read mode (see `store start`).",
)
@click.option(
    "--secure", is_flag=True, help="Start the local cluster with keys (every connection CURVE)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option(
    "--cluster",
    metavar="HOST:PORT[,...]",
    help="Drive this cluster instead of starting a local one.",
)
@key_options("With --cluster: the client's")
def bench(
    workload: str, duration: float, ops: int | None, warmup: float, regions: int | None,
    clients: int, rate: float | None, processes: int | None, value_size: int, keys: int,
    distribution: str, read_ratio: float, scan_limit: int, timeout: float,
    hibernate_regions: bool, read_mode: str, secure: bool, as_json: bool, cluster: str | None,
    key_file: str | None, cluster_keys: str | None,
) -> None:  # fmt: skip
    """Load the cluster with WORKLOAD and print ops/s and latency percentiles."""
    endpoints = _endpoints(cluster)
    cfg = BenchConfig(
        workload=workload, duration=None if ops else duration, ops=ops,
        regions=regions or DEFAULT_REGIONS, split=endpoints is None or regions is not None,
        clients=clients, processes=processes, value_size=value_size, keys=keys,
        distribution=distribution, read_ratio=read_ratio, warmup=warmup,
        scan_limit=scan_limit, timeout=timeout, rate=rate,
        store_args=(
            *(() if hibernate_regions else ("--no-hibernate-regions",)),
            "--read-mode", read_mode,
        ),
        secure=secure, client_keys=client_keys(key_file, cluster_keys, cluster),
    )  # fmt: skip
    with sigterm_raises(), ProgressView(cfg.duration, cfg.ops) as view:
        try:
            result = run_bench(cfg, endpoints, progress=view.update, log=view.log)
        except (MultiraftError, RuntimeError, TimeoutError) as e:
            raise CommandFailed(f"{type(e).__name__}: {e}") from None
    if as_json:
        click.echo(json.dumps(result))
    else:
        render(result)


def _endpoints(cluster: str | None) -> list[str] | None:
    if cluster is None:
        return None
    try:
        return parse_cluster(cluster)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--cluster'") from None
