"""A big region reaches a store that needs a snapshot: it streams in chunks,
the data arrives exactly, and neither store's memory grows with its size."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import pytest

from multiraft import Client
from multiraft.errors import MultiraftError

from .harness import wait_for

CHUNK = 256 << 10
WINDOW = 4
VALUE = 64 << 10
KEYS = 480  # 30 MiB of values
LOG = os.environ.get("SNAP_TEST_LOG", "").split()
ALLOWANCE = 16 << 20
"""Fixed room for what one install holds besides the chunks: an ingest
transaction of `ingest.TXN_BYTES` (4 MiB) as Python bytes and again as
LMDB dirty pages, allocator slack and ZeroMQ buffers."""


def rss_anon(pid: int) -> int:
    """Anonymous resident memory of `pid` in bytes.

    Not VmRSS: LMDB is memory-mapped, so every page of data.mdb a store
    reads or a snapshot streams counts in VmRSS as a file-backed page the
    kernel may drop at will. RssAnon is the heap, which is what a snapshot
    held in memory would grow."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc status")


class PeakSampler:
    """Samples RssAnon of some pids every few ms in a thread; keeps the peaks."""

    def __init__(self, pids: list[int]) -> None:
        self.peak = {pid: rss_anon(pid) for pid in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            for pid in self.peak:
                with contextlib.suppress(OSError, AssertionError):
                    self.peak[pid] = max(self.peak[pid], rss_anon(pid))

    def stop(self) -> dict[int, int]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak


@pytest.mark.slow
def test_a_30_mib_region_streams_to_a_lagging_store_in_bounded_memory(make_cluster) -> None:
    c = make_cluster(3, 3, "--raft-log-gc-threshold", "40", "--snap-chunk-size", str(CHUNK), *LOG)
    with Client(c.endpoints(), timeout=30) as client:
        client.put(b"first", b"1")
        leader = c.wait_leader(1)
        lagging, other = (i for i in c.ids if i != leader)
        c.kill(lagging)
        expected = {b"first": b"1"}
        for i in range(KEYS):
            key = b"big%04d" % i
            value = (b"%04d" % i) * (VALUE // 4)
            client.put(key, value)
            expected[key] = value
        # Baselines: the sender as it is now, the receiver started and idle
        # while the others are stopped, so it cannot get the snapshot yet.
        for i in (leader, other):
            os.kill(c.procs[i].pid, signal.SIGSTOP)
        try:
            c.start(lagging)
            time.sleep(1.5)
        finally:
            for i in (leader, other):
                os.kill(c.procs[i].pid, signal.SIGCONT)
        pids = {"sender": c.procs[leader].pid, "receiver": c.procs[lagging].pid}
        base = {name: rss_anon(pid) for name, pid in pids.items()}
        sampler = PeakSampler(list(pids.values()))
        try:

            def caught_up() -> bool:
                if c.leader_of(1, [lagging]) == lagging:
                    return True
                with contextlib.suppress(MultiraftError):  # a leader change in flight
                    client.transfer_leader(1, lagging)
                return False

            wait_for("the lagging store to catch up and lead", caught_up, timeout=60)
        finally:
            peak = sampler.stop()
        assert dict(client.scan(b"", b"")) == expected
    growth = {name: peak[pid] - base[name] for name, pid in pids.items()}
    print(f"RssAnon baseline {base}, growth during the transfer {growth}")
    bound = 2 * WINDOW * CHUNK + ALLOWANCE
    assert growth["sender"] < bound, growth
    assert growth["receiver"] < bound, growth
    assert not list((c.root / f"store-{lagging}" / "snap").glob("*"))
