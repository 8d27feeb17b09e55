"""SIGKILL a real writer process at random moments; after each kill, reopen
and check that every reported commit is there and no batch is partial."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from multiraft.storage import Engine, PeerStorage, kv

from .crash_child import COUNTER_KEY, Model, RegionModel

REPO = Path(__file__).resolve().parents[2]
REGIONS = 50
KILLS = 120
READY_TIMEOUT_S = 10.0


def start_child(path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.storage.crash_child", str(path), str(REGIONS)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        bufsize=0,  # unbuffered: wait_ready's readline must not swallow batch lines
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def wait_ready(child: subprocess.Popen[bytes]) -> None:
    """Block (bounded) until the child has opened the store."""
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], READY_TIMEOUT_S)
    assert ready, "crash child did not start in time"
    assert child.stdout.readline() == b"ready\n"


def kill_after(child: subprocess.Popen[bytes], delay: float) -> list[int]:
    """SIGKILL the child after `delay`; the batch numbers it reported."""
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    out, _ = child.communicate(timeout=READY_TIMEOUT_S)
    assert child.returncode == -signal.SIGKILL, "crash child died on its own"
    return [int(line) for line in out.split(b"\n")[:-1]]


def check_region(engine: Engine, region_id: int, m: RegionModel) -> None:
    ps = PeerStorage(engine, region_id, cache_entries=0)
    assert ps.first_index() == m.truncated + 1
    assert ps.last_index() == m.last
    assert ps.term(m.truncated) == m.truncated_term
    assert ps.entries(m.truncated + 1, m.last + 1, 1 << 30) == m.entries
    assert ps.hard_state == m.hard_state
    assert ps.apply_state.applied_index == m.applied
    prefix = b"r%03d/" % region_id
    assert dict(kv.scan(engine, prefix, prefix[:-1] + b"0")) == m.data


def check_store(path: Path, model: Model, reported: int) -> None:
    """Disk holds exactly batches 1..c, where c is the last reported batch
    or the one after it (committed, killed before it printed)."""
    with Engine(path) as engine:
        c = int(kv.get(engine, COUNTER_KEY) or b"0")
        assert reported <= c <= reported + 1
        model.advance(c)
        for region_id, m in model.regions.items():
            check_region(engine, region_id, m)


@pytest.mark.slow
def test_sigkill_loses_no_commit_and_shows_no_partial_batch(tmp_path: Path) -> None:
    rng = random.Random(20240601)
    path = tmp_path / "store"
    model = Model(REGIONS)
    reported = 0
    for _ in range(KILLS):
        child = start_child(path)
        try:
            wait_ready(child)
            lines = kill_after(child, rng.uniform(0.0, 0.03))
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert lines == list(range(model.n + 1, model.n + 1 + len(lines)))
        reported = lines[-1] if lines else model.n
        check_store(path, model, reported)
    assert model.n > KILLS, "too few batches committed to mean anything"
