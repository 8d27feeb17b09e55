"""Seeded schedules of a 4-store cluster in one process (`simulation`):
clients read and write while stores crash (between turns and in the middle
of one), restart, get cut off and lose or delay frames, and regions split,
move replicas and change leaders. Every schedule must end with linearizable
histories (so no acknowledged write is lost) and replicas that agree."""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.store.simulation import KEYS, SPLIT_KEYS, SimClient, SimCluster, replica_views
from tests.verify.assertions import assert_linearizable

REPO = Path(__file__).resolve().parents[2]
SCHEDULES = 500
WORKER_TIMEOUT = 600
CHUNKS = 16
CHUNK = 0.25
"""Seconds of cluster time between two nemesis decisions."""
SETTLE = 30.0


def nemesis(cluster: SimCluster, admin: SimClient, rng: random.Random) -> None:
    """One random decision: a fault, a repair, an admin operation, or nothing."""
    roll, weight = rng.random(), 0.0
    for chance, action in ACTIONS:
        weight += chance
        if roll < weight:
            action(cluster, admin, rng)
            break
    if cluster.mid_turn_crash_rate and any(not s.up for s in cluster.stores.values()):
        cluster.mid_turn_crash_rate = 0.0  # one store down at a time


def crash_one(cluster: SimCluster, admin: SimClient, rng: random.Random) -> None:
    if all(s.up for s in cluster.stores.values()):
        cluster.crash(rng.choice(sorted(cluster.stores)), rng.uniform(0.3, 6.0))


def cut_one_off(cluster: SimCluster, admin: SimClient, rng: random.Random) -> None:
    victim = rng.choice(sorted(cluster.stores))
    cluster.cut = {frozenset((victim, o)) for o in cluster.stores if o != victim}


def pause_one(cluster: SimCluster, admin: SimClient, rng: random.Random) -> None:
    """SIGSTOP a store (most often a leader of something) for up to 3 s."""
    if all(s.paused_until < cluster.now for s in cluster.stores.values()):
        cluster.pause(rng.choice(sorted(cluster.stores)), rng.uniform(0.2, 3.0))


def reconnect(cluster: SimCluster, admin: SimClient, rng: random.Random) -> None:
    cluster.cut = set()


def degrade_network(cluster: SimCluster, admin: SimClient, rng: random.Random) -> None:
    cluster.drop_rate = rng.choice([0.0, 0.01, 0.05])
    cluster.max_delay = rng.choice([0.002, 0.01, 0.05])


def kill_in_turns(cluster: SimCluster, admin: SimClient, rng: random.Random) -> None:
    """From now on a store may die mid-turn, its batch not yet committed."""
    cluster.mid_turn_crash_rate = 0.01


def stop_killing_in_turns(cluster: SimCluster, admin: SimClient, rng: random.Random) -> None:
    cluster.mid_turn_crash_rate = 0.0


def split(cluster: SimCluster, admin: SimClient, rng: random.Random) -> None:
    admin.queue.append(("split", rng.choice(SPLIT_KEYS), None))


def transfer_leader(cluster: SimCluster, admin: SimClient, rng: random.Random) -> None:
    admin.queue.append(("transfer_leader", rng.choice(KEYS), rng.randint(1, 4)))


def change_peer(cluster: SimCluster, admin: SimClient, rng: random.Random) -> None:
    change = rng.choice(["add", "remove"])
    admin.queue.append(("change_peer", rng.choice(KEYS), (rng.randint(1, 4), change)))


ACTIONS = [
    (0.12, crash_one),
    (0.08, cut_one_off),
    (0.06, pause_one),
    (0.10, reconnect),
    (0.08, degrade_network),
    (0.05, kill_in_turns),
    (0.05, stop_killing_in_turns),
    (0.20, split),
    (0.10, transfer_leader),
    (0.12, change_peer),
]
"""(chance, action) of one nemesis decision; what is left: nothing happens."""


def heal(cluster: SimCluster) -> None:
    cluster.cut = set()
    cluster.drop_rate = 0.0
    cluster.max_delay = 0.005
    cluster.mid_turn_crash_rate = 0.0
    for s in cluster.stores.values():
        if not s.up:
            cluster.start(s.id)


def settled(cluster: SimCluster) -> bool:
    """Every region has a leader, and all its replicas applied the same index."""
    views = replica_views(cluster)
    return bool(views) and all(
        cluster.leader_of(rid) is not None and len({applied for _, applied, _ in v}) == 1
        for rid, v in views.items()
    )


class EventCounter(logging.Handler):
    """Counts log records of the store by their format string."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[str(record.msg)] += 1

    def count(self, fragment: str) -> int:
        return sum(n for msg, n in self.counts.items() if fragment in msg)


@contextmanager
def counting_events() -> Iterator[EventCounter]:
    logger = logging.getLogger("multiraft")
    handler, level = EventCounter(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def wait_settled(cluster: SimCluster, clients: list[SimClient], seed: int) -> None:
    """Run until the clients have nothing left to do and the cluster settled."""
    waited = 0.0
    while not (all(c.op is None and not c.queue for c in clients) and settled(cluster)):
        assert waited < SETTLE, f"seed {seed}: the cluster did not settle"
        cluster.run(0.5)
        waited += 0.5


def run_schedule(root: Path, seed: int) -> dict[str, int]:
    with counting_events() as events:
        report = _run_schedule(root, seed)
    report["snapshots installed"] = events.count("installing a snapshot")
    report["splits"] = events.count("split at")
    report["membership changes"] = events.count("of peer %d applied")
    return report


def _run_schedule(root: Path, seed: int) -> dict[str, int]:
    cluster = SimCluster(root, seed)
    rng = random.Random(seed)
    clients = [SimClient(cluster, i) for i in range(3)]
    admin = SimClient(cluster, 99, record=False)
    admin.running = False
    cluster.clients = [*clients, admin]
    try:
        cluster.run(1.5)
        for _ in range(CHUNKS):
            nemesis(cluster, admin, rng)
            cluster.run(CHUNK)
        heal(cluster)
        for c in clients:
            c.running = False
        wait_settled(cluster, clients, seed)
        final_reads = cluster.now
        for c in clients:
            c.queue = [("get", k, None) for k in KEYS]
        wait_settled(cluster, clients, seed)
        history = [op for c in clients for op in c.history]
        finals = [op for op in history if op.f == "get" and op.start >= final_reads]
        assert len(finals) == len(clients) * len(KEYS), f"seed {seed}: final reads failed"
        assert_linearizable(history, f"seed {seed}:")
        for rid, replicas in replica_views(cluster).items():
            datas = {repr(data) for _, _, data in replicas}
            assert len(datas) == 1, f"seed {seed}: replicas of region {rid} differ"
        return {
            "ops": len(history),
            "regions": len(replica_views(cluster)),
            "crashes": cluster.crashes,
            "admin": sum(not isinstance(r, Exception) for _, r in admin.done),
        }
    finally:
        cluster.close()


def run_seeds(root: Path, seeds: range) -> list[str]:
    """Run schedules; returns what failed, one line each."""
    failures = []
    for seed in seeds:
        try:
            run_schedule(root / f"seed-{seed}", seed)
        except AssertionError as e:
            failures.append(f"seed {seed}: {e}")
    return failures


@pytest.mark.slow
def test_schedules_keep_histories_linearizable_and_replicas_equal(tmp_path: Path) -> None:
    """SCHEDULES seeds, in one process per core and without coverage's
    tracer (under it they take four times as long)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COV_CORE")}
    env["PYTHONPATH"] = str(REPO)
    halves = [range(0, SCHEDULES // 2), range(SCHEDULES // 2, SCHEDULES)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.store.test_simulation",
                str(tmp_path / str(n)),
                *map(str, (h.start, h.stop)),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for n, h in enumerate(halves)
    ]
    try:
        outputs = [p.communicate(timeout=WORKER_TIMEOUT)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs
    failures = [line for out in outputs for line in out.splitlines() if line]
    assert failures == [], "\n".join(failures)


def test_one_schedule_does_real_work(tmp_path: Path) -> None:
    """A schedule is not trivially green: operations run, stores crash,
    regions split and move."""
    report = run_schedule(tmp_path, 7)
    assert report["ops"] > 100 and report["crashes"] > 0 and report["regions"] > 1, report
    assert report["snapshots installed"] > 0 and report["membership changes"] > 0, report


if __name__ == "__main__":
    # python -m tests.store.test_simulation ROOT FIRST_SEED END_SEED
    logging.disable(logging.WARNING)
    for line in run_seeds(Path(sys.argv[1]), range(int(sys.argv[2]), int(sys.argv[3]))):
        print(line, flush=True)
