"""Throughput and p99 of multiraft as regions and clients grow.

For each region count a fresh local 3-store cluster (fsync on, 3 replicas)
is pre-split, its leaders spread, and keys preloaded; then every workload
runs at every client count on it, through the same machinery as `multiraft
bench`. Writes bench/results/sweep.csv and sweep.png (matplotlib, from the
`bench` extra).

    python bench/sweep.py                      # ~7 minutes on 2 cores
    python bench/sweep.py --duration 2 --regions 1,16 --clients 16,64
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from multiraft.bench.cluster import LocalCluster
from multiraft.bench.runner import BenchConfig, prepare, run_load, summarize
from multiraft.client import Client

RESULTS = Path(__file__).parent / "results"
FIELDS = ["workload", "regions", "clients", "ops", "ops_per_sec", "p50_ms", "p99_ms",
          "p999_ms", "max_ms", "errors", "client_cpu", "leaders_per_store"]  # fmt: skip


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def sweep_regions(base: BenchConfig, regions: int, clients: list[int],
                  workloads: list[str]) -> list[dict[str, Any]]:  # fmt: skip
    """All workloads and client counts on one cluster split into `regions`."""
    rows = []
    with LocalCluster() as cluster:
        cfg = replace(base, regions=regions, workload="get" if "get" in workloads else "put")
        prepare(cfg, cluster.endpoints, split=True, log=_log)
        for workload in workloads:
            for c in clients:
                run = replace(cfg, workload=workload, clients=c)
                results = run_load(run, cluster.endpoints)
                with Client(cluster.endpoints) as client:
                    status = client.status()
                r = summarize(run, results, status, local=True)
                _log(f"{workload:4} regions={regions:<4} clients={c:<4} "
                     f"{r['ops_per_sec']:>9,.0f} ops/s  p99 {r['latency_ms']['p99']:.1f} ms"
                     f"  errors {r['errors'] or 0}")  # fmt: skip
                rows.append(_row(r))
    return rows


def _row(r: dict[str, Any]) -> dict[str, Any]:
    lat = r["latency_ms"]
    return {
        "workload": r["workload"], "regions": r["regions"], "clients": r["clients"],
        "ops": r["ops"], "ops_per_sec": r["ops_per_sec"], "p50_ms": lat["p50"],
        "p99_ms": lat["p99"], "p999_ms": lat["p999"], "max_ms": lat["max"],
        "errors": sum(r["errors"].values()), "client_cpu": r["client_cpu"],
        "leaders_per_store": "/".join(str(v) for v in r["leaders_per_store"].values()),
    }  # fmt: skip


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Throughput and p99 against regions (a line per client count) and
    against clients (a line per region count); put solid, get dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    for col, (x, series) in enumerate((("regions", "clients"), ("clients", "regions"))):
        for row, (y, label) in enumerate((("ops_per_sec", "ops/s"), ("p99_ms", "p99 latency, ms"))):
            ax = axes[row][col]
            for (workload, s), points in _group(rows, series).items():
                xs, ys = zip(*sorted((p[x], p[y]) for p in points), strict=True)
                style = "-" if workload == "put" else "--"
                ax.plot(xs, ys, style, marker="o", label=f"{workload}, {series}={s}")
            ax.set_xscale("log", base=2)
            ax.set_xlabel(x)
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
            if row == 1:
                ax.set_yscale("log")
            ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _group(rows: list[dict[str, Any]], series: str) -> dict[tuple[str, int], list[dict]]:
    out: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        out.setdefault((r["workload"], r[series]), []).append(r)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regions", type=ints, default=ints("1,4,16,64,256"))
    p.add_argument("--clients", type=ints, default=ints("64,256,1024"))
    p.add_argument("--workloads", default="put,get")
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per point")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--processes", type=int, default=None, help="default: as multiraft bench")
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    base = BenchConfig(
        duration=args.duration, warmup=args.warmup, processes=args.processes,
        value_size=args.value_size, keys=args.keys,
    )  # fmt: skip
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    for regions in args.regions:
        rows += sweep_regions(base, regions, args.clients, args.workloads.split(","))
    write_csv(rows, args.out / "sweep.csv")
    title = (f"multiraft, 3 stores on 127.0.0.1, fsync on, {args.value_size}-byte values, "
             f"{args.keys:,} uniform keys, {args.duration:g} s per point, "
             f"{os.cpu_count()} cores")  # fmt: skip
    try:
        plot(rows, args.out / "sweep.png", title)
    except ImportError:
        _log("matplotlib missing (pip install -e '.[bench]'): no plot")
    _log(f"wrote {args.out / 'sweep.csv'} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
