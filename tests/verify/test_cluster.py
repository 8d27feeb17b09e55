"""The cluster `verify` starts: what the nemesis breaks, `heal()` puts
back, and on the way out every store stops and its log is kept."""

from __future__ import annotations

import os
import time
from pathlib import Path

from multiraft.verify.cluster import VerifyCluster


def _stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP takes effect a moment after
    it is sent: waits up to 5 s for it)."""
    deadline = time.monotonic() + 5
    while True:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state == "T" or time.monotonic() > deadline:
            return state == "T"
        time.sleep(0.01)


def test_heal_restarts_and_resumes_and_stop_keeps_the_logs(tmp_path: Path) -> None:
    cluster = VerifyCluster(3, tmp_path / "logs")
    with cluster:
        assert cluster.ids == [1, 2, 3]
        assert all(a.startswith("127.0.0.1:") for a in cluster.endpoints)
        cluster.kill(1)
        cluster.pause(2)
        assert cluster.procs[1].poll() is not None and _stopped(cluster.procs[2].pid)
        old = cluster.procs[1].pid
        cluster.heal()
        assert cluster.killed == set() and cluster.paused == set()
        assert cluster.procs[1].pid != old and cluster.procs[1].poll() is None
        cluster.wait_ready()
        with open(f"/proc/{cluster.procs[2].pid}/stat") as f:
            assert f.read().rsplit(")", 1)[1].split()[0] != "T"
        cluster.pause(3)  # still paused when the run ends
    assert all(p.poll() is not None for p in cluster.procs.values())
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == [
        "store-1.log",
        "store-2.log",
        "store-3.log",
    ]
    assert not cluster.root.exists()
    assert all(not os.path.exists(f"/proc/{p.pid}") for p in cluster.procs.values())
