"""A big region streams to a store that lost it: time and memory.

    python bench/snapshot.py [--mib 1024] [--chunk-kib 1024]

Three stores (fsync on); store 3 is SIGKILLed; `--mib` MiB of 1 MiB values
are written to the one region (log GC at 40 entries, so store 3 can only
catch up by snapshot); store 3 restarts. Printed: the time from restart to
the snapshot's data being installed, how long the install itself held the
store's loop, and each store's peak growth of anonymous memory (RssAnon in
/proc/PID/status: LMDB's memory map is file-backed, so the data itself does
not count) over its level before the restart.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import time

from multiraft import AsyncClient
from multiraft.bench.cluster import LocalCluster

INSTALL_TIMEOUT = 900.0


def rss_anon(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


async def write(endpoints: list[str], mib: int) -> None:
    value = os.urandom(1 << 20)
    async with AsyncClient(endpoints, timeout=60) as client:
        room = asyncio.Semaphore(8)

        async def put(i: int) -> None:
            async with room:
                await client.put(b"big%06d" % i, value[:-8] + i.to_bytes(8, "big"))

        await asyncio.gather(*(put(i) for i in range(mib)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--chunk-kib", type=int, default=1024)
    args = ap.parse_args()
    extra = (
        "--raft-log-gc-threshold", "40",
        "--region-split-size", str(1 << 40), "--region-split-keys", str(1 << 40),
        "--snap-chunk-size", str(args.chunk_kib << 10), "--log-level", "info",
    )  # fmt: skip
    with LocalCluster(3, 3, extra) as cluster:
        cluster.kill(3)
        started = time.monotonic()
        asyncio.run(write([cluster.addrs[1], cluster.addrs[2]], args.mib))
        print(f"wrote {args.mib} MiB in {time.monotonic() - started:.1f} s")
        time.sleep(1.0)
        base = {sid: rss_anon(pid) for sid, pid in cluster.pids().items() if sid != 3}
        cluster.restart(3)
        started = time.monotonic()
        time.sleep(0.5)  # up, not yet receiving: its own level
        base[3] = rss_anon(cluster.pids()[3])
        peak = dict(base)
        log = cluster.root / "store-3.log"
        while "snapshot data installed" not in log.read_text(errors="replace"):
            if time.monotonic() - started > INSTALL_TIMEOUT:
                raise SystemExit(f"no install in {INSTALL_TIMEOUT:.0f} s:\n{cluster.log_tail()}")
            for sid, pid in cluster.pids().items():
                peak[sid] = max(peak[sid], rss_anon(pid))
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        stamps = re.findall(
            r"(\d\d:\d\d:\d\d,\d+) .*(installing a snapshot|snapshot data installed)",
            log.read_text(errors="replace"),
        )
        print(f"restart -> data installed: {elapsed:.1f} s")
        if len(stamps) >= 2:
            spread = seconds(stamps[-1][0]) - seconds(stamps[0][0])
            print(f"install, spread over loop turns: {spread:.1f} s")
        for sid in sorted(peak):
            growth = (peak[sid] - base[sid]) / 1e6
            print(f"store {sid}: RssAnon {base[sid] / 1e6:.1f} MB, peak growth {growth:.1f} MB")


def seconds(stamp: str) -> float:
    h, m, s = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


if __name__ == "__main__":
    main()
