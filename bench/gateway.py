"""The Redis gateway's throughput next to `AsyncClient`'s, on one cluster.

A local 3-store cluster (fsync on, 16 regions), one gateway (`multiraft
redis`), then: SETs through the gateway from redis-py's asyncio client in
C connections pipelining P commands each, and `multiraft bench --cluster`
on the same cluster with C and with 1,024 requests in flight, for D seconds
each; then a local redis-server (AOF, `appendfsync always`, one node, no
replication) under the same redis-benchmark. The gateway runs each
connection's commands one after another, as Redis does (a pipelined GET
must see the SET before it), so C connections are C requests in flight
however deep their pipelines.
With Debian's redis-tools installed the load is `redis-benchmark -t set,get
-n 200000 -c C -P P` instead of redis-py.

    python bench/gateway.py                  # C=64, P=16, D=10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time

import redis.asyncio as aioredis

from multiraft import Client
from multiraft.bench.cluster import LocalCluster, free_ports
from multiraft.bench.runner import balance_leaders
from multiraft.bench.workload import split_keys


async def redis_py_load(port: int, conns: int, pipeline: int, seconds: float) -> float:
    """SETs/s through the gateway: `conns` connections, `pipeline` per batch."""
    done = 0
    deadline = time.monotonic() + seconds

    async def one(i: int) -> None:
        nonlocal done
        r = aioredis.Redis(port=port)
        n = 0
        while time.monotonic() < deadline:
            pipe = r.pipeline(transaction=False)
            for _ in range(pipeline):
                n += 1
                pipe.set(b"key%08d" % ((i * 1_000_003 + n) % 100_000), b"x" * 100)
            await pipe.execute()
            done += pipeline
        await r.aclose()

    start = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(conns)))
    return done / (time.monotonic() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--pipeline", type=int, default=16)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--requests", type=int, default=200_000, help="redis-benchmark -n")
    p.add_argument("--pipeline-order", choices=["connection", "key"], default="connection")
    a = p.parse_args()
    result: dict[str, object] = {
        "connections": a.connections,
        "pipeline": a.pipeline,
        "pipeline_order": a.pipeline_order,
    }
    with LocalCluster() as cluster:
        with Client(cluster.endpoints, timeout=30) as c:
            c.split_many(split_keys(100_000, 16))
            balance_leaders(c, lambda _m: None)
        port = free_ports(1)[0]
        gw = subprocess.Popen(
            [sys.executable, "-m", "multiraft.cli.main", "redis", "--listen",
             f"127.0.0.1:{port}", "--cluster", ",".join(cluster.endpoints), "--log-level",
             "warning", "--pipeline-order", a.pipeline_order]
        )  # fmt: skip
        try:
            time.sleep(2)
            if shutil.which("redis-benchmark"):
                result["gateway"] = redis_benchmark(port, a)
            else:
                load = redis_py_load(port, a.connections, a.pipeline, a.duration)
                result["gateway"] = {"SET (redis-py)": round(asyncio.run(load))}
            result["async_client_puts"] = {
                n: _bench(cluster, n, a.duration) for n in (a.connections, 1024)
            }
        finally:
            gw.terminate()
            gw.wait(timeout=10)
    if shutil.which("redis-server") and shutil.which("redis-benchmark"):
        result["redis_server_appendfsync_always"] = local_redis(a)
    print(json.dumps(result))


def redis_benchmark(port: int, a: argparse.Namespace) -> dict[str, float]:
    """requests/s per test, from redis-benchmark's CSV output."""
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "set,get", "-n", str(a.requests), "-r", "100000",
         "-c", str(a.connections), "-P", str(a.pipeline), "--csv"],
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


def _bench(cluster: LocalCluster, clients: int, seconds: float) -> int:
    """`multiraft bench` puts/s with `clients` requests in flight."""
    out = subprocess.run(
        [sys.executable, "-m", "multiraft.cli.main", "bench", "--cluster",
         ",".join(cluster.endpoints), "--workload", "put", "--clients", str(clients),
         "--duration", str(seconds), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return round(json.loads(out.stdout.splitlines()[-1])["ops_per_sec"])


if __name__ == "__main__":
    main()
