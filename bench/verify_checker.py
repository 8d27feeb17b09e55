"""How fast `multiraft verify`'s checker checks a big register history.

The history is simulated (seeded): processes run operations back to back on
registers, each taking effect at a random instant inside its call, so the
history is linearizable by construction. Latencies are mostly a few
milliseconds with a tail of slow calls (an election's worth), so calls on a
hot key overlap; a few calls time out ("info"), and of those half took
effect at some point after they started (maybe after the client gave up)
and half never did. Keys are drawn Zipf-like: of 16 keys, the hottest gets 30% of the
operations.

Measured (2 shared cores, Python 3.11): 50,000 ops on 16 keys by 8
processes, 511 of them info, check in 0.5 s (about 95,000 ops/s), all keys
ok; with --stale 1 (one read of the busiest key, 14,838 ops, made stale) in
1.5 s, the violation found with a window of 2 ops (the search first spends
an eighth of the 10 s budget trying to prove it by brute force).

    python bench/verify_checker.py [--ops 50000] [--keys 16] [--processes 8] [--stale 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from collections import Counter

from multiraft.verify.checker import check
from multiraft.verify.history import Op


def simulate(n: int, keys: int, processes: int, info: float, seed: int) -> list[Op]:
    """`n` operations of a linearizable register store (see the module docstring)."""
    rng = random.Random(seed)
    names = [f"k{i:02d}" for i in range(keys)]
    weights = [1 / (i + 1) for i in range(keys)]
    clock = [rng.uniform(0, 0.002) for _ in range(processes)]
    calls = []  # (effect time or None, process, key, f, value, start, end, outcome)
    for i in range(n):
        p = min(range(processes), key=clock.__getitem__)
        start = clock[p]
        latency = rng.expovariate(1 / 0.002) if rng.random() > 0.01 else rng.uniform(0.05, 0.5)
        end = start + latency
        key = rng.choices(names, weights)[0]
        f = rng.choices(["get", "put", "cas", "delete"], [5, 3, 2, 1])[0]
        outcome = "info" if rng.random() < info else "ok"
        at = rng.uniform(start, end)
        if outcome == "info":
            at = rng.uniform(start, end + 1.0) if rng.random() < 0.5 else None
        calls.append([at, p, key, f, f"v{i}", start, end, outcome])
        clock[p] = end + rng.uniform(0, 0.0005)
    return _results(calls, rng)


def _results(calls: list[list], rng: random.Random) -> list[Op]:
    """Apply the calls in the order they took effect and record what each saw."""
    state: dict[str, str | None] = {}
    written: dict[str, list[str | None]] = {}
    ops = []
    for at, p, key, f, value, start, end, outcome in sorted(
        calls, key=lambda c: c[0] if c[0] is not None else c[5]
    ):
        current = state.get(key)
        history = written.setdefault(key, [None])
        result = None
        if f == "get":
            result, value = current, None
        elif f == "put":
            history.append(value)
        elif f == "delete":
            value = None
        else:
            expected = rng.choice(history[-3:])
            result = current == expected
            value = [expected, value]
            if result:
                history.append(value[1])
        if at is not None:  # it took effect
            state[key] = {"put": value, "delete": None}.get(f, current)
            if f == "cas" and result:
                state[key] = value[1]
        if outcome == "info":
            result = None
        ops.append(Op(p, key, f, value, outcome, result, start, end))
    return sorted(ops, key=lambda op: op.end)


def make_stale(ops: list[Op], n: int, seed: int) -> list[Op]:
    """`ops` with `n` reads of the busiest key changed to read a value that
    was overwritten before they started: each a violation to find."""
    rng = random.Random(seed)
    key = Counter(op.key for op in ops).most_common(1)[0][0]
    puts = [op for op in ops if op.key == key and op.f == "put" and op.type == "ok"]
    gets = [i for i, op in enumerate(ops) if op.key == key and op.f == "get" and op.type == "ok"]
    ops = list(ops)
    for i in rng.sample(gets[len(gets) // 2 :], n):
        older = [p for p in puts if p.end < ops[i].start]
        ops[i] = dataclasses.replace(ops[i], result=older[-5].value)
    return ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=50_000)
    parser.add_argument("--keys", type=int, default=16)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--info", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stale", type=int, default=0, help="reads made stale (violations)")
    args = parser.parse_args()
    ops = simulate(args.ops, args.keys, args.processes, args.info, args.seed)
    ops = make_stale(ops, args.stale, args.seed)
    began = time.perf_counter()
    verdicts = check(ops)
    took = time.perf_counter() - began
    statuses = Counter(v.status for v in verdicts)
    print(
        f"{len(ops):,} ops on {len(verdicts)} keys by {args.processes} processes "
        f"({sum(op.type == 'info' for op in ops)} info): checked in {took:.2f} s, "
        f"{len(ops) / took:,.0f} ops/s; verdicts {dict(statuses)}"
    )
    for v in verdicts:
        if v.status != "ok":
            print(f"  {v.key}: {v.status}, {v.reason}")


if __name__ == "__main__":
    main()
