"""The Redis gateway's throughput next to `AsyncClient`'s, on one cluster.

A local 3-store cluster (fsync on, 16 regions for each load's keys); then, one after another on
that cluster: `redis-benchmark -t set,get -n N -r 100000 -c C -P P`
against a gateway (`multiraft redis`) in each pipeline order with 1 and
with 2 worker processes, and `multiraft bench --cluster` (puts) with C and
with C x P requests in flight, from 1 and from 2 processes; last, the same
redis-benchmark against a local redis-server (AOF, `appendfsync always`,
one node, no replication). Needs Debian's redis-tools (and redis-server
for the last figure).

With `--pipeline-order connection` (Redis' order) a connection's commands
run one after another, so C connections are C requests in flight however
deep their pipelines; with `key` a pipeline's commands on different keys
are in the cluster at once: C x P in flight.

    python bench/gateway.py                  # C=64, P=16, N=200,000
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time

from multiraft import Client
from multiraft.bench.cluster import LocalCluster, free_ports
from multiraft.bench.runner import balance_leaders
from multiraft.bench.workload import split_keys

WORKERS = (1, 2)
KEYS = 100_000
"""Keys of both loads (redis-benchmark -r, multiraft bench --keys)."""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--pipeline", type=int, default=16)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per multiraft bench")
    p.add_argument("--requests", type=int, default=200_000, help="redis-benchmark -n")
    a = p.parse_args()
    if not shutil.which("redis-benchmark"):
        sys.exit("needs redis-benchmark: apt-get install redis-tools")
    result: dict[str, object] = {"connections": a.connections, "pipeline": a.pipeline}
    with LocalCluster() as cluster:
        with Client(cluster.endpoints, timeout=30) as c:
            c.split_many(split_keys(KEYS, 16) + redis_benchmark_split_keys(KEYS, 16))
            balance_leaders(c, lambda _m: None)
        for order in ("connection", "key"):
            for workers in WORKERS:
                result[f"gateway {order} order, {workers} worker(s)"] = gateway(
                    cluster, order, workers, a
                )
        in_flight = (a.connections, a.connections * a.pipeline)
        for n in in_flight:
            for processes in WORKERS:
                puts = bench(cluster, n, processes, a.duration)
                result[f"AsyncClient {n} in flight, {processes} process(es)"] = puts
    if shutil.which("redis-server"):
        result["redis-server appendfsync always"] = local_redis(a)
    print(json.dumps(result))


def redis_benchmark_split_keys(keys: int, regions: int) -> list[bytes]:
    """Where to cut redis-benchmark's keys (`key:` and `-r`'s random number
    in 12 digits) into `regions` equal ranges, as `split_keys` cuts the
    bench's: both loads then spread over 16 regions of their own."""
    return [b"key:%012d" % (keys * j // regions) for j in range(1, regions)]


def gateway(cluster: LocalCluster, order: str, workers: int, a: argparse.Namespace) -> object:
    port = free_ports(1)[0]
    proc = subprocess.Popen(
        [sys.executable, "-m", "multiraft.cli.main", "redis", "--listen", f"127.0.0.1:{port}",
         "--cluster", ",".join(cluster.endpoints), "--log-level", "warning",
         "--pipeline-order", order, "--workers", str(workers)]
    )  # fmt: skip
    try:
        time.sleep(2)
        return redis_benchmark(port, a)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def redis_benchmark(port: int, a: argparse.Namespace) -> dict[str, float]:
    """requests/s per test, from redis-benchmark's CSV output."""
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "set,get", "-n", str(a.requests),
         "-r", str(KEYS), "-c", str(a.connections), "-P", str(a.pipeline), "--csv"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = [line.replace('"', "").split(",") for line in out.stdout.splitlines()[1:]]
    return {row[0]: float(row[1]) for row in rows if len(row) > 1}


def local_redis(a: argparse.Namespace) -> dict[str, float]:
    """One redis-server, AOF with an fsync per write (no replication)."""
    port = free_ports(1)[0]
    with tempfile.TemporaryDirectory() as d:
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--dir", d, "--appendonly", "yes",
             "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(1)
            return redis_benchmark(port, a)
        finally:
            server.terminate()
            server.wait(timeout=10)


def bench(cluster: LocalCluster, clients: int, processes: int, seconds: float) -> int:
    """`multiraft bench` puts/s with `clients` requests in flight."""
    out = subprocess.run(
        [sys.executable, "-m", "multiraft.cli.main", "bench", "--cluster",
         ",".join(cluster.endpoints), "--workload", "put", "--clients", str(clients),
         "--processes", str(processes), "--duration", str(seconds), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return round(json.loads(out.stdout.splitlines()[-1])["ops_per_sec"])


if __name__ == "__main__":
    main()
