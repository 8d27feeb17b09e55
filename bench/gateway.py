"""The Redis gateway's throughput next to `AsyncClient`'s, on one cluster.

A local 3-store cluster (fsync on, 16 regions), one gateway (`multiraft
redis`), then: SETs through the gateway from redis-py's asyncio client in
C connections pipelining P commands each, and `multiraft bench --cluster`
on the same cluster with C and with C x P requests in flight, for D seconds
each. The gateway runs each connection's commands one after another, as
Redis does (a pipelined GET must see the SET before it), so C connections
are C requests in flight however deep their pipelines.
redis-benchmark (Debian's redis-tools) is used instead of redis-py when it is
installed: `redis-benchmark -t set,get -n 200000 -c C -P P`.

    python bench/gateway.py                  # C=64, P=16, D=10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
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
    a = p.parse_args()
    with LocalCluster() as cluster:
        with Client(cluster.endpoints, timeout=30) as c:
            c.split_many(split_keys(100_000, 16))
            balance_leaders(c, lambda _m: None)
        port = free_ports(1)[0]
        gw = subprocess.Popen(
            [sys.executable, "-m", "multiraft.cli.main", "redis", "--listen",
             f"127.0.0.1:{port}", "--cluster", ",".join(cluster.endpoints), "--log-level",
             "warning"]
        )  # fmt: skip
        try:
            time.sleep(2)
            if shutil.which("redis-benchmark"):
                out = subprocess.run(
                    ["redis-benchmark", "-p", str(port), "-t", "set,get", "-n", "200000",
                     "-c", str(a.connections), "-P", str(a.pipeline), "-q"],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                gateway = out.stdout.strip()
            else:
                gateway = round(
                    asyncio.run(redis_py_load(port, a.connections, a.pipeline, a.duration))
                )
            direct = {n: _bench(cluster, n, a.duration) for n in
                      (a.connections, a.connections * a.pipeline)}  # fmt: skip
        finally:
            gw.terminate()
            gw.wait(timeout=10)
    result = {"connections": a.connections, "pipeline": a.pipeline}
    print(json.dumps({**result, "gateway_sets_per_s": gateway, "async_client_puts_per_s": direct}))


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
