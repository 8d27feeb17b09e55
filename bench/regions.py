"""Many regions per store: what they cost when idle and what they cost the
throughput, with hibernation (quiet regions) on and off.

For each region count, on a fresh local cluster (3 stores, 3 replicas,
fsync on): the time `split_many` takes to cut the key space into N
regions, the time until every region is quiet, idle CPU per store (% of one
core, from /proc/PID/stat) and RSS, then every store SIGKILLed and
restarted: the time until every region has a leader and a put succeeds,
and idle CPU again. On the largest count, the store leading the most
regions is SIGKILLed: each of its regions gets a put until one succeeds,
and the time from the kill is reported per region; every acknowledged
write is read back. Then `multiraft bench --workload put --clients 1024`
at 16, 256 and 1,024 regions, hibernation on and off.

    python bench/regions.py                           # about 25 minutes
    python bench/regions.py --regions 100,1000 --idle 20 --puts 16,256
    python bench/regions.py --regions 10000 --off "" --puts "" --out /tmp/r

Writes regions.json and regions.png (matplotlib, from the `bench` extra)
to --out, bench/results by default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from multiraft import AsyncClient, Client
from multiraft.bench.cluster import LocalCluster
from multiraft.bench.runner import BenchConfig, run_bench
from multiraft.bench.workload import split_keys
from multiraft.errors import MultiraftError

RESULTS = Path(__file__).parent / "results"
KEY_SPACE = 1_000_000
OFF = ("--no-hibernate-regions",)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle_cpu(cluster: LocalCluster, seconds: float) -> dict[str, Any]:
    """% of one core each store used over `seconds` of no load, and RSS."""
    pids = cluster.pids()
    before = {sid: cpu_seconds(p) for sid, p in pids.items()}
    time.sleep(seconds)
    cpu = {sid: round((cpu_seconds(p) - before[sid]) / seconds * 100, 2) for sid, p in pids.items()}
    return {"cpu_pct": cpu, "rss_mb": {sid: round(rss_mb(p)) for sid, p in pids.items()}}


def wait_quiet(c: Client, regions: int, timeout: float) -> float | None:
    """Seconds until every store reports all its replicas quiet (None: not
    within `timeout`, as without hibernation)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            st = c.status()
        except MultiraftError:
            time.sleep(1)
            continue
        led = sum(leader is not None for _, leader in st["regions"])
        if led == regions and all(s.get("quiet") == s["regions"] for s in st["stores"]):
            return round(time.monotonic() - start, 1)
        time.sleep(1)
    return None


def wait_serving(c: Client, regions: int, timeout: float) -> None:
    """Until every region has a leader and a put is acknowledged."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            entries = c.regions()
            if len(entries) == regions and all(leader is not None for _, leader in entries):
                c.put(b"serving-probe", b"x")
                return
        except MultiraftError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"not serving within {timeout} s")


def measure(regions: int, hibernate: bool, idle_s: float, failover: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"regions": regions, "hibernate": hibernate}
    with LocalCluster(3, 3, () if hibernate else OFF) as cluster:
        with Client(cluster.endpoints, timeout=1800) as c:
            start = time.monotonic()
            c.split_many(split_keys(KEY_SPACE, regions))
            row["split_s"] = round(time.monotonic() - start, 1)
            log(f"{regions} regions (hibernation {hibernate}): split in {row['split_s']} s")
            row["quiet_after_s"] = wait_quiet(c, regions, 300 if hibernate else 20)
            row["idle"] = idle_cpu(cluster, idle_s)
            log(f"  idle: {row['idle']}")
            for sid in list(cluster.procs):
                cluster.kill(sid)
            start = time.monotonic()
            for sid in list(cluster.procs):
                cluster.restart(sid)
        with Client(cluster.endpoints, timeout=60) as c:
            wait_serving(c, regions, 600)
            row["restart_to_serving_s"] = round(time.monotonic() - start, 1)
            log(f"  restart to serving: {row['restart_to_serving_s']} s")
            if hibernate:
                wait_quiet(c, regions, 300)
                row["idle_after_restart"] = idle_cpu(cluster, idle_s)
                log(f"  idle after restart: {row['idle_after_restart']}")
            if failover:
                row["failover"] = measure_failover(cluster, c)
    return row


def measure_failover(cluster: LocalCluster, c: Client) -> dict[str, Any]:
    """SIGKILL the store leading the most regions; per region, seconds from
    the kill to the first acknowledged put; then read every write back."""
    entries = c.regions()
    counts: dict[int, int] = {}
    for _, leader in entries:
        if leader is not None:
            counts[leader] = counts.get(leader, 0) + 1
    victim = max(counts, key=lambda s: counts[s])
    keys = [r.start + b"-failover" for r, leader in entries if leader == victim]
    cluster.kill(victim)
    killed = time.monotonic()
    delays, lost = asyncio.run(failover_writes(cluster.endpoints, keys, killed))
    delays.sort()
    n = len(delays)
    result = {
        "victim": victim,
        "regions_led": n,
        "p50_s": round(delays[n // 2], 2),
        "p99_s": round(delays[min(n - 1, n * 99 // 100)], 2),
        "max_s": round(delays[-1], 2),
        "acknowledged_writes_lost": lost,
    }
    log(f"  failover: {result}")
    return result


async def failover_writes(
    endpoints: list[str], keys: list[bytes], since: float
) -> tuple[list[float], int]:
    """Put each key until acknowledged (seconds from `since` each), then
    read every one back: how many acknowledged writes are missing."""
    async with AsyncClient(endpoints, timeout=60) as client:

        async def put(key: bytes) -> float:
            while True:
                try:
                    await client.put(key, key)
                    return time.monotonic() - since
                except MultiraftError:
                    await asyncio.sleep(0.1)

        delays = list(await asyncio.gather(*(put(k) for k in keys)))
        values = await asyncio.gather(*(client.get(k) for k in keys))
        return delays, sum(v != k for k, v in zip(keys, values, strict=True))


def puts(regions: int, hibernate: bool, duration: float) -> dict[str, Any]:
    cfg = BenchConfig(
        workload="put",
        regions=regions,
        clients=1024,
        duration=duration,
        store_args=() if hibernate else OFF,
    )
    r = run_bench(cfg, log=log)
    log(f"puts, {regions} regions, hibernation {hibernate}: {r['ops_per_sec']:,.0f}/s")
    return {
        "regions": regions,
        "hibernate": hibernate,
        "ops_per_sec": round(r["ops_per_sec"]),
        "p99_ms": r["latency_ms"]["p99"],
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for on in (True, False):
        rows = [r for r in result["idle"] if r["hibernate"] is on]
        if rows:
            xs = [r["regions"] for r in rows]
            ys = [max(r["idle"]["cpu_pct"].values()) for r in rows]
            a.plot(xs, ys, marker="o", label=f"hibernation {'on' if on else 'off'}")
        rows = [r for r in result["puts"] if r["hibernate"] is on]
        if rows:
            b.plot(
                [r["regions"] for r in rows],
                [r["ops_per_sec"] for r in rows],
                marker="o",
                label=f"hibernation {'on' if on else 'off'}",
            )
    a.set(xscale="log", xlabel="regions", ylabel="idle CPU, busiest store (% of a core)")
    b.set(xscale="log", xlabel="regions", ylabel="puts/s (1,024 in flight)", ylim=(0, None))
    for ax in (a, b):
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regions", type=ints, default=[100, 1000, 10000])
    p.add_argument("--off", type=ints, default=[100, 1000], help="Also without hibernation.")
    p.add_argument("--idle", type=float, default=60.0, help="Seconds of idle CPU measured.")
    p.add_argument("--puts", type=ints, default=[16, 256, 1024])
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=RESULTS, help="Directory of the results.")
    args = p.parse_args(argv)
    result: dict[str, Any] = {"idle": [], "puts": []}
    args.out.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        (args.out / "regions.json").write_text(json.dumps(result, indent=1) + "\n")

    for n in args.regions:
        result["idle"].append(measure(n, True, args.idle, failover=n == max(args.regions)))
        save()
    for n in args.off:
        result["idle"].append(measure(n, False, args.idle, failover=False))
        save()
    for n in args.puts:
        for on in (True, False):
            result["puts"].append(puts(n, on, args.duration))
            save()
    if result["puts"]:
        plot(result, args.out / "regions.png")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
