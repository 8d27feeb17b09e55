"""Storage engine throughput next to raw LMDB, same machine, same run.

    python bench/storage.py [--quick]

For 1, 100 and 1,000 regions and 1, 10, 100 and 1,000 entries per commit
(spread round-robin over the regions, each touched region also gets a
HardState, as a Ready would), the engine's path (`PeerStorage.append` +
`set_hard_state` into one `WriteBatch`, one commit) is timed against raw
LMDB writing exactly the same key/value bytes, pre-encoded, with one
`putmulti` in one transaction per commit. fsync is on for both. Building the
entries is outside the timing (the Raft core does it). `ratio` is engine
entries/s over raw batched entries/s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import lmdb

from multiraft.raft.types import Entry, HardState
from multiraft.storage import Engine, PeerStorage, keys
from multiraft.storage.states import encode_entry, encode_hard_state

REGIONS = (1, 100, 1000)
BATCHES = (1, 10, 100, 1000)
PAYLOAD = b"v" * 100
MAP_SIZE = 2 << 30
ROUNDS = 5

Work = list[list[tuple[int, list[Entry], HardState]]]


def make_work(regions: int, batch: int, commits: int) -> Work:
    """Per commit: (region, entries, hard state) for each region it touches."""
    next_index = [1] * (regions + 1)
    cursor = 0
    work: Work = []
    for _ in range(commits):
        per_region: dict[int, int] = {}
        for j in range(batch):
            r = 1 + (cursor + j) % regions
            per_region[r] = per_region.get(r, 0) + 1
        cursor += batch
        commit = []
        for r, n in per_region.items():
            lo = next_index[r]
            next_index[r] = lo + n
            ents = [Entry(1, i, data=PAYLOAD) for i in range(lo, lo + n)]
            commit.append((r, ents, HardState(1, 1, lo + n - 1)))
        work.append(commit)
    return work


def raw_items(work: Work) -> list[list[tuple[bytes, bytes]]]:
    """The exact key/value pairs the engine writes for `work`."""
    out = []
    for commit in work:
        items = []
        for r, ents, hs in commit:
            items += [(keys.raft_log_key(r, e.index), encode_entry(e)) for e in ents]
            items.append((keys.hard_state_key(r), encode_hard_state(hs)))
        out.append(items)
    return out


def time_engine(path: Path, regions: int, work: Work) -> float:
    with Engine(path, map_size=MAP_SIZE) as engine:
        storages = [PeerStorage(engine, r) for r in range(regions + 1)]
        t0 = time.perf_counter()
        for commit in work:
            batch = engine.batch()
            for r, ents, hs in commit:
                ps = storages[r]
                ps.append(batch, ents)
                ps.set_hard_state(batch, hs)
            batch.commit()
        return time.perf_counter() - t0


def open_raw(path: Path) -> lmdb.Environment:
    return lmdb.open(str(path), map_size=MAP_SIZE, sync=True, metasync=True, writemap=False)


def time_raw_batched(path: Path, items: list[list[tuple[bytes, bytes]]]) -> float:
    env = open_raw(path)
    t0 = time.perf_counter()
    for commit in items:
        with env.begin(write=True) as txn:
            txn.cursor().putmulti(commit)
    elapsed = time.perf_counter() - t0
    env.close()
    return elapsed


def raw_single_puts_per_s(path: Path, n: int) -> float:
    env = open_raw(path)
    value = encode_entry(Entry(1, 1, data=PAYLOAD))
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        with env.begin(write=True) as txn:
            txn.put(keys.raft_log_key(1, i), value)
    elapsed = time.perf_counter() - t0
    env.close()
    return n / elapsed


def best_of(
    rounds: int, path: Path, regions: int, work: Work, items: list[list[tuple[bytes, bytes]]]
) -> tuple[float, float]:
    """Best times of engine and raw, alternating runs (fresh dirs) so that
    disk hiccups hit both alike."""
    t_engine = t_raw = float("inf")
    for i in range(rounds):
        t_engine = min(
            t_engine, time_engine(path.with_name(f"{path.name}-engine{i}"), regions, work)
        )
        t_raw = min(t_raw, time_raw_batched(path.with_name(f"{path.name}-raw{i}"), items))
    return t_engine, t_raw


def commits_for(batch: int, scale: float) -> int:
    """Enough commits to time well, few enough to stay quick."""
    return max(int(scale * min(1000, 60_000 // batch)), 20)


def main(scale: float) -> None:
    with tempfile.TemporaryDirectory(prefix="multiraft-bench-") as d:
        run(Path(d), scale)


def run(tmp: Path, scale: float) -> None:
    single = raw_single_puts_per_s(tmp / "single", int(2000 * scale))
    print(f"raw LMDB, one put per txn (fsync each): {single:,.0f} puts/s\n")
    head = f"{'regions':>7} {'batch':>5} | {'engine ent/s':>12} {'commits/s':>9} |"
    print(f"{head} {'raw ent/s':>12} {'commits/s':>9} | {'ratio':>5}")
    for regions in REGIONS:
        for batch in BATCHES:
            commits = commits_for(batch, scale)
            work = make_work(regions, batch, commits)
            items = raw_items(work)
            t_engine, t_raw = best_of(ROUNDS, tmp / f"{regions}-{batch}", regions, work, items)
            n = commits * batch
            print(
                f"{regions:>7} {batch:>5} | {n / t_engine:>12,.0f} {commits / t_engine:>9,.0f} |"
                f" {n / t_raw:>12,.0f} {commits / t_raw:>9,.0f} | {t_raw / t_engine:>5.2f}"
            )


if __name__ == "__main__":
    main(0.2 if "--quick" in sys.argv else 1.0)
