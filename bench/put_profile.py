"""Where a put's time goes, per put, in every process: `multiraft bench`
(its own 3 stores, 16 regions) under puts, `py-spy` sampling each store and
each load-generator process for a few seconds mid-run; each sample goes to
the first part of the path it finds walking from the innermost frame out.

    python bench/put_profile.py                  # about 40 s
    python bench/put_profile.py --clients 256 --regions 256

Prints, per part, the sampled time per put (µs, summed over the processes
of that side): CPU, except the LMDB commit, which is mostly the fsync's
wait. Needs `py-spy` (the `bench` extra) and the right to attach to child
processes (root, or ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

RATE = 100
"""Samples per second per process."""

STORE_PARTS = [
    ("LMDB commit + fsync", ("_write_once",)),
    ("Raft core (step, propose, Ready)", ("multiraft/raft/",)),
    ("peer frames: encode, decode", ("multiraft/transport/",)),
    ("client frames: decode requests, encode replies", ("multiraft/protocol/",)),
    ("apply: data and sessions", ("store/session.py", "storage/kv.py", "apply")),
    ("log and state writes into the batch", ("multiraft/storage/",)),
    ("ZeroMQ", ("zmq/",)),
    ("the store's turn (queues, checks, routing)", ("multiraft/store/",)),
]
"""(part, needles): a sample belongs to the first part one of whose
needles is in its innermost frame that has any."""
CLIENT_PARTS = [
    ("client frames: encode requests, decode replies", ("multiraft/protocol/",)),
    ("ZeroMQ", ("zmq/",)),
    ("AsyncClient (futures, retries, routing)", ("multiraft/client/",)),
    ("load generator (keys, latency histogram)", ("multiraft/bench/",)),
    ("asyncio event loop", ("asyncio/",)),
]


def part_of(stack: list[str], parts: list[tuple[str, tuple[str, ...]]]) -> str:
    for frame in reversed(stack):
        for name, needles in parts:
            if any(n in frame for n in needles):
                return name
    return "other"


def read_raw(path: Path) -> list[tuple[list[str], int]]:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            rows.append((stack.split(";"), int(count)))
    return rows


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def profile(clients: int, regions: int, seconds: float, out: Path) -> float:
    """Run the bench, sample its stores and generators into `out`; puts/s."""
    duration = seconds + 14
    cmd = [sys.executable, "-m", "multiraft.cli.main", "bench", "--workload", "put"]
    cmd += ["--clients", str(clients), "--regions", str(regions)]
    cmd += ["--duration", str(duration), "--json"]
    bench = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        time.sleep(8 + regions / 100)  # the cluster up, split, warmed up
        kinds = {"store start": "store", "spawn_main": "client"}
        procs = {
            pid: kind
            for pid in children(bench.pid)
            for k, kind in kinds.items()
            if k in cmdline(pid)
        }
        spies = [
            subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "-r",
                    str(RATE),
                    "-d",
                    str(int(seconds)),
                    "-p",
                    str(pid),
                    "-f",
                    "raw",
                    "-o",
                    str(out / f"{kind}-{pid}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            for pid, kind in procs.items()
        ]
        for spy in spies:
            spy.wait(timeout=seconds + 30)
        result = json.loads(bench.communicate(timeout=duration + 120)[0].decode().splitlines()[-1])
        return float(result["ops_per_sec"])
    finally:
        if bench.poll() is None:
            bench.send_signal(signal.SIGTERM)
            bench.wait(timeout=60)


def report(out: Path, puts: float) -> None:
    for kind, parts in (("store", STORE_PARTS), ("client", CLIENT_PARTS)):
        counts: Counter[str] = Counter()
        for f in out.glob(f"{kind}-*.txt"):
            for stack, n in read_raw(f):
                counts[part_of(stack, parts)] += n
        total = sum(counts.values())
        print(f"\n{kind}s, {1e6 * total / RATE / puts:.0f} µs sampled per put:")
        for name, _ in [*parts, ("other", ())]:
            us = 1e6 * counts[name] / RATE / puts
            print(f"  {us:7.1f} µs  {100 * counts[name] / max(total, 1):4.0f}%  {name}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=1024)
    p.add_argument("--regions", type=int, default=16)
    p.add_argument("--seconds", type=float, default=8.0, help="Sampled per process.")
    p.add_argument("--out", type=Path, help="Keep py-spy's raw stacks here.")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="put-profile-") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        rate = profile(args.clients, args.regions, args.seconds, out)
        print(f"{rate:,.0f} puts/s, {args.clients} in flight, {args.regions} regions")
        report(out, rate * int(args.seconds))


if __name__ == "__main__":
    main()
