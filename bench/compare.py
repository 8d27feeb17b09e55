"""multiraft next to PySyncObj on the same put workload, in one run.

Both get 3 replicas on 127.0.0.1, the same value size, the same key space
(uniform), the same number of requests in flight and the same measuring
window after a warmup. multiraft runs with fsync on, through `multiraft
bench`'s machinery (its own local cluster, 1 region and 16 regions).
PySyncObj runs as 3 node processes holding a replicated dict (a SyncObj
with a @replicated `set`), in each of its configurations:

- default:        in-memory log, log compaction at its defaults
- journal:        file journal (memory-mapped) + full dump file
- no-compaction:  in-memory log, log compaction disabled
- no-batch:       appendEntriesUseBatch=False (append entries sent at once
                  rather than on the next period: its low-latency setting)

PySyncObj has no external clients: commands are submitted through a node
(followers forward them to the leader) and a command's callback fires when
that node has applied it. So, as in PySyncObj's own benchmarks, the load
generator runs inside each of the 3 nodes, a third of the requests in flight
each, closed-loop from the callbacks; latency is submit -> callback.
Note that PySyncObj's journal never fsyncs (mmap writes, flushed at exit),
so no PySyncObj configuration is durable the way multiraft's writes are.

    python bench/compare.py [--duration 10] [--clients 64] [--value-size 100]
"""

from __future__ import annotations

import argparse
import base64
import csv
import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from multiraft.bench.cluster import free_ports
from multiraft.bench.histogram import Latencies
from multiraft.bench.runner import BenchConfig, run_bench
from multiraft.bench.workload import key_of

RESULTS = Path(__file__).parent / "results"
CONFIGS = ("default", "journal", "no-compaction", "no-batch")
READY_TIMEOUT = 60.0
DRAIN = 5.0
"""Seconds a node waits for its last callbacks after the window closes."""


# ---- one PySyncObj node (a child process) --------------------------------------


def node_conf(config: str, data_dir: str) -> Any:
    """The SyncObjConf of one configuration."""
    from pysyncobj import SyncObjConf

    if config == "default":
        return SyncObjConf()
    if config == "journal":
        return SyncObjConf(
            journalFile=os.path.join(data_dir, "journal"),
            fullDumpFile=os.path.join(data_dir, "dump"),
        )
    if config == "no-compaction":
        return SyncObjConf(logCompactionMinEntries=2**62, logCompactionMinTime=10**9)
    if config == "no-batch":
        return SyncObjConf(appendEntriesUseBatch=False)
    raise ValueError(f"unknown PySyncObj configuration {config!r}")


def make_kv(me: str, partners: list[str], conf: Any) -> Any:
    """A SyncObj holding a dict whose `set` is replicated."""
    from pysyncobj import SyncObj, replicated

    class KV(SyncObj):
        def __init__(self) -> None:
            super().__init__(me, partners, conf)
            self._data: dict[bytes, bytes] = {}

        @replicated
        def set(self, key: bytes, value: bytes) -> None:
            self._data[key] = value

    return KV()


class CallbackLoad:
    """`clients` commands in flight from one node: each callback records
    its latency and submits the next command, until the window closes."""

    def __init__(self, kv: Any, clients: int, value: bytes, keys: int, window: tuple) -> None:
        self.kv, self.clients, self.value, self.keys = kv, clients, value, keys
        self.t0, self.t1 = window  # time.time() bounds of the measuring window
        self.lock = threading.Lock()
        self.rng = random.Random()
        self.lat = Latencies()
        self.ops = 0
        self.errors: Counter[str] = Counter()
        self.inflight = 0
        self.idle = threading.Event()

    def start(self) -> None:
        for _ in range(self.clients):
            self._submit()

    def _submit(self) -> None:
        with self.lock:
            if time.time() >= self.t1:
                if self.inflight == 0:
                    self.idle.set()
                return
            self.inflight += 1
            key = key_of(self.rng.randrange(self.keys))
        began = time.time(), time.monotonic()
        self.kv.set(key, self.value, callback=functools.partial(self._done, began))

    def _done(self, began: tuple[float, float], _result: Any, err: int) -> None:
        from pysyncobj import FAIL_REASON

        now_wall, now = time.time(), time.monotonic()
        with self.lock:
            self.inflight -= 1
            if began[0] >= self.t0 and now_wall <= self.t1:
                if err == FAIL_REASON.SUCCESS:
                    self.lat.record(now - began[1])
                    self.ops += 1
                else:
                    self.errors[_reason(err)] += 1
        self._submit()


def _reason(err: int) -> str:
    from pysyncobj import FAIL_REASON

    names = {v: k for k, v in vars(FAIL_REASON).items() if isinstance(v, int)}
    return names.get(err, str(err))


def node_main(args: argparse.Namespace) -> None:
    """Run one node: say READY once a leader is known, load on GO, print the
    result as one JSON line, and exit on EXIT (or end of stdin)."""
    kv = make_kv(args.me, args.partners.split(","), node_conf(args.config, args.dir))
    deadline = time.monotonic() + READY_TIMEOUT
    while kv._getLeader() is None or not kv.isReady():
        if time.monotonic() > deadline:
            sys.exit("no leader in time")
        time.sleep(0.05)
    print("READY", flush=True)
    go, warmup, duration = sys.stdin.readline().split()[1:]
    t0 = float(go) + float(warmup)
    value = os.urandom(args.value_size)
    load = CallbackLoad(kv, args.clients, value, args.keys, (t0, t0 + float(duration)))
    cpu0 = _cpu()
    load.start()
    time.sleep(max(0.0, load.t1 - time.time()))
    load.idle.wait(DRAIN)
    result = {
        "ops": load.ops,
        "errors": dict(load.errors),
        "latencies": base64.b64encode(load.lat.encode()).decode(),
        "cpu_s": _cpu() - cpu0,
        "leader": str(kv._getLeader()) == args.me,
    }
    print(json.dumps(result), flush=True)
    sys.stdin.readline()
    kv.destroy()


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


# ---- the parent: 3 nodes, one configuration --------------------------------------


def run_pysyncobj(config: str, clients: int, duration: float, warmup: float, value_size: int,
                  keys: int) -> dict[str, Any]:  # fmt: skip
    """Start 3 nodes, load them together, merge their results, stop them."""
    root = tempfile.mkdtemp(prefix=f"pysyncobj-{config}-")
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    procs: list[subprocess.Popen[str]] = []
    try:
        for i, me in enumerate(addrs):
            partners = ",".join(a for a in addrs if a != me)
            per_node = clients // 3 + (1 if i < clients % 3 else 0)
            os.makedirs(os.path.join(root, str(i)))
            cmd = [sys.executable, __file__, "node", "--me", me, "--partners", partners,
                   "--config", config, "--dir", os.path.join(root, str(i)),
                   "--clients", str(per_node), "--value-size", str(value_size),
                   "--keys", str(keys)]  # fmt: skip
            with open(os.path.join(root, f"{i}.log"), "w") as log:
                procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=log, text=True,
                                              start_new_session=True))  # fmt: skip
        for p in procs:
            _expect(p, "READY", READY_TIMEOUT)
        go = time.time() + 0.2
        for p in procs:
            _send(p, f"GO {go} {warmup} {duration}")
        lines = [_expect(p, "{", warmup + duration + DRAIN + 30) for p in procs]
        for p in procs:
            _send(p, "EXIT")
        row = _merge_nodes([json.loads(x) for x in lines], duration, config)
        row["log_warnings"] = _count_warnings(root)
        return row
    finally:
        _stop_all(procs)
        shutil.rmtree(root, ignore_errors=True)


def _count_warnings(root: str) -> dict[str, int]:
    """Lines the nodes logged, by their first words: PySyncObj logs e.g.
    "truncating already-applied log entries ..." when a follower's applied
    state may have diverged."""
    out: Counter[str] = Counter()
    for name in sorted(os.listdir(root)):
        if name.endswith(".log"):
            with open(os.path.join(root, name), errors="replace") as f:
                for line in f:
                    if line.strip():
                        out[" ".join(line.split()[:4])] += 1
    return dict(out)


def _send(p: subprocess.Popen[str], line: str) -> None:
    assert p.stdin is not None
    p.stdin.write(line + "\n")
    p.stdin.flush()


def _expect(p: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    """The node's next stdout line starting with `prefix`, read by a helper
    thread so the wait is bounded."""
    assert p.stdout is not None
    out: list[str] = []

    def read() -> None:
        for line in p.stdout:  # type: ignore[union-attr]
            if line.startswith(prefix):
                out.append(line)
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    if not out:
        raise TimeoutError(f"PySyncObj node {p.pid}: no {prefix!r} line in {timeout:.0f} s")
    return out[0]


def _stop_all(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)


def _merge_nodes(nodes: list[dict[str, Any]], duration: float, config: str) -> dict[str, Any]:
    lat = Latencies.merge(base64.b64decode(n["latencies"]) for n in nodes)
    errors: Counter[str] = Counter()
    for n in nodes:
        errors.update(n["errors"])
    ops = sum(n["ops"] for n in nodes)
    return {
        "system": f"pysyncobj/{config}",
        "ops": ops,
        "ops_per_sec": round(ops / duration, 1),
        "latency_ms": lat.summary_ms(),
        "errors": dict(errors),
        "leaders": sum(1 for n in nodes if n["leader"]),
    }


# ---- the comparison ------------------------------------------------------------------


def run_multiraft(regions: int, clients: int, args: argparse.Namespace) -> dict[str, Any]:
    cfg = BenchConfig(
        workload="put", duration=args.duration, warmup=args.warmup, regions=regions,
        clients=clients, processes=args.processes, value_size=args.value_size,
        keys=args.keys,
    )  # fmt: skip
    r = run_bench(cfg, log=lambda m: print(f"  {m}", file=sys.stderr))
    return {
        "system": f"multiraft/{regions}-region{'s' if regions > 1 else ''}",
        "clients": clients,
        "ops": r["ops"],
        "ops_per_sec": r["ops_per_sec"],
        "latency_ms": r["latency_ms"],
        "errors": r["errors"],
        "leaders": r["leaders_per_store"],
    }


def run_level(clients: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every system at one number of requests in flight."""
    rows = []
    for regions in (int(x) for x in args.regions.split(",")):
        print(f"multiraft, {regions} region(s), {clients} in flight ...", file=sys.stderr)
        rows.append(run_multiraft(regions, clients, args))
    for config in args.configs.split(","):
        print(f"pysyncobj, {config}, {clients} in flight ...", file=sys.stderr)
        row = run_pysyncobj(config, clients, args.duration, args.warmup, args.value_size,
                            args.keys)  # fmt: skip
        rows.append({"clients": clients, **row})
    return rows


def print_table(rows: list[dict[str, Any]], base: dict[str, Any]) -> None:
    head = f"{'system':28} {'in flight':>9} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
    print(head + f" {'p99.9':>8} {'max':>8} {'errors':>8} {'multiraft/this':>15}")
    for r in rows:
        lat = r["latency_ms"]
        ratio = base["ops_per_sec"] / r["ops_per_sec"] if r["ops_per_sec"] else float("inf")
        errs = sum(r["errors"].values())
        print(
            f"{r['system']:28} {r['clients']:>9} {r['ops_per_sec']:>9,.0f} {lat['p50']:>8.2f} "
            f"{lat['p99']:>8.2f} {lat['p999']:>8.2f} {lat['max']:>8.2f} {errs:>8} "
            f"{ratio:>14.2f}x"
        )


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["system", "clients", "ops", "ops_per_sec", "p50_ms", "p99_ms", "p999_ms",
                    "max_ms", "errors"])  # fmt: skip
        for r in rows:
            lat = r["latency_ms"]
            latencies = [lat["p50"], lat["p99"], lat["p999"], lat["max"]]
            errors = sum(r["errors"].values())
            w.writerow([r["system"], r["clients"], r["ops"], r["ops_per_sec"], *latencies, errors])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode")
    node = sub.add_parser("node", help="(internal) one PySyncObj node")
    for name in ("--me", "--partners", "--config", "--dir"):
        node.add_argument(name, required=True)
    for name in ("--clients", "--value-size", "--keys"):
        node.add_argument(name, type=int, required=True)
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per system")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument(
        "--clients", default="64,1024", help="requests in flight (a list: each level in turn)"
    )
    p.add_argument(
        "--processes", type=int, default=None, help="multiraft load processes (default: as bench)"
    )
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--regions", default="1,16", help="multiraft region counts to run")
    p.add_argument("--configs", default=",".join(CONFIGS), help="PySyncObj configurations")
    p.add_argument("--out", type=Path, default=RESULTS / "compare.csv")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.mode == "node":
        node_main(args)
        return
    rows = []
    for level in (int(x) for x in args.clients.split(",")):
        rows += run_level(level, args)
    print(
        f"\nput, {args.value_size}-byte values, {args.keys:,} uniform keys, 3 replicas on "
        f"127.0.0.1, {args.duration:g} s after {args.warmup:g} s warmup, "
        f"{os.cpu_count()} cores; ratio: the first multiraft row of the same level / this"
    )
    for level in sorted({r["clients"] for r in rows}):
        same = [r for r in rows if r["clients"] == level]
        print_table(same, same[0])
    for r in rows:
        for what, n in r.get("log_warnings", {}).items():
            print(f"{r['system']} at {r['clients']} in flight logged {n}x: {what} ...")
    write_csv(rows, args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
