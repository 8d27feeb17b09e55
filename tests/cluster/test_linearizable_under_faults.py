"""Concurrent clients against a 3-store cluster of 200 regions, most of
them quiet, while stores are killed, paused (SIGSTOP, longer than a leader
lease or not) and restarted, regions split and leaders move: every key's
history must be linearizable, with Timeout meaning "may or may not have
happened". Reads are lease reads (the default read mode)."""

from __future__ import annotations

import contextlib
import random
import signal
import threading
import time

import pytest

from multiraft import Client
from multiraft.errors import MultiraftError, Timeout
from multiraft.verify.history import Op
from tests.verify.assertions import assert_linearizable

from .harness import wait_for
from .test_quiet_regions import quiet_counts

KEYS = [b"lin-%d" % i for i in range(6)]
PRESPLIT = [b"%03d" % i for i in range(0, 970, 5)] + KEYS
"""200 regions: the clients' keys each start one, the others stay idle."""


def client_worker(
    endpoints: list[str],
    seed: int,
    stop: threading.Event,
    out: list[Op],
    keys: dict | None = None,
) -> None:
    rng = random.Random(seed)
    with Client(endpoints, timeout=8, **(keys or {})) as client:
        n = 0
        while not stop.is_set():
            key = rng.choice(KEYS)
            kind = rng.choices(["get", "put", "cas", "delete"], [4, 3, 3, 1])[0]
            n += 1
            value = b"%d-%d" % (seed, n)
            arg = result = None
            outcome = "ok"
            start = time.monotonic()
            try:
                if kind == "get":
                    result = client.get(key)
                elif kind == "put":
                    arg = value
                    client.put(key, value)
                elif kind == "delete":
                    client.delete(key)
                else:
                    arg = (client.get(key), value)
                    start = time.monotonic()
                    result = client.cas(key, *arg)
            except Timeout:
                if kind == "cas" and arg is None:
                    continue  # the read of what to expect timed out: no cas was sent
                outcome, result = "info", None  # it may or may not have happened
            except MultiraftError:
                continue  # a definite refusal: it did not happen
            out.append(Op(seed, key.decode(), kind, arg, outcome, result, start, time.monotonic()))


def nemesis(cluster, seed: int, stop: threading.Event) -> None:
    rng = random.Random(seed)
    with Client(cluster.endpoints(), timeout=8, **cluster.client_keys()) as admin:
        while not stop.is_set():
            victim = rng.choice(cluster.ids)
            action = rng.choice(["kill", "pause", "split", "transfer"])
            if action == "kill":
                cluster.kill(victim)
                stop.wait(rng.uniform(0.3, 1.0))
                cluster.start(victim)
            elif action == "pause":
                proc = cluster.procs[victim]
                proc.send_signal(signal.SIGSTOP)
                stop.wait(rng.uniform(0.3, 1.5))
                proc.send_signal(signal.SIGCONT)
            elif action == "split":
                with contextlib.suppress(MultiraftError):
                    admin.split(rng.choice(KEYS) + b"~")
            else:
                # ValueError: the directory was read mid-split.
                with contextlib.suppress(MultiraftError, ValueError):
                    key = rng.choice(KEYS)
                    [region] = [r for r, _ in admin.regions() if r.contains(key)]
                    admin.transfer_leader(region.id, victim)
            stop.wait(rng.uniform(0.5, 1.5))


@pytest.mark.slow
@pytest.mark.parametrize("secure", [False, True], ids=["plain", "curve"])
def test_histories_are_linearizable_under_kills_pauses_and_splits(make_cluster, secure) -> None:
    c = make_cluster(3, secure=secure)
    with Client(c.endpoints(), timeout=30, **c.client_keys()) as admin:
        admin.split_many(PRESPLIT)

    def mostly_quiet() -> bool:
        counts = quiet_counts(c)
        return len(counts) == 3 and all(q >= 150 for _, q in counts.values())

    wait_for("most of 200 regions quiet", mostly_quiet, timeout=60)
    stop = threading.Event()
    histories: list[list[Op]] = [[] for _ in range(4)]
    workers = [
        threading.Thread(
            target=client_worker, args=(c.endpoints(), i, stop, histories[i], c.client_keys())
        )
        for i in range(4)
    ]
    chaos = threading.Thread(target=nemesis, args=(c, 99, stop))
    for t in [*workers, chaos]:
        t.start()
    try:
        time.sleep(15)
    finally:
        stop.set()
        for t in [*workers, chaos]:
            t.join(timeout=60)
        for i in c.ids:  # leave no store paused
            c.procs[i].send_signal(signal.SIGCONT)
    ops = [op for h in histories for op in h]
    completed = [op for op in ops if not op.unknown]
    assert len(completed) > 200, f"too little progress: {len(completed)} ops"
    assert_linearizable(ops)
