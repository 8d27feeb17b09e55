"""Cost of the Raft core per entry: 3 in-memory nodes, batched proposals.

    python bench/raft_core.py [--batch B ...] [--entries N] [--one-by-one]

A proposal counts once it is applied on the leader. No I/O at all: this is
the ceiling the core puts on a store's throughput. CPU us/proposal is the
cost of all nodes together (the leader and two followers).
"""

from __future__ import annotations

import argparse
import time

from multiraft.raft import Config, ConfState, MemoryStorage, RawNode


def build(n: int) -> dict[int, tuple[RawNode, MemoryStorage]]:
    ids = tuple(range(1, n + 1))
    nodes = {}
    for i in ids:
        storage = MemoryStorage(ConfState(ids))
        nodes[i] = (RawNode(Config(i, max_inflight_msgs=1024), storage), storage)
    return nodes


def pump(nodes: dict[int, tuple[RawNode, MemoryStorage]]) -> int:
    """Run Ready rounds until quiet; returns entries applied on node 1."""
    applied = 0
    while True:
        inbox = []
        busy = False
        for node_id, (node, storage) in nodes.items():
            if not node.has_ready():
                continue
            busy = True
            rd = node.ready()
            storage.append(rd.entries)
            if rd.hard_state is not None:
                storage.set_hard_state(rd.hard_state)
            inbox.extend(rd.messages)
            if node_id == 1:
                applied += len(rd.committed_entries)
            node.advance(rd)
        for m in inbox:
            nodes[m.to][0].step(m)
        if not busy and not inbox:
            return applied


def run(n_nodes: int, batch: int, entries: int, one_by_one: bool) -> tuple[float, float]:
    """Committed proposals per second and CPU microseconds per proposal."""
    nodes = build(n_nodes)
    nodes[1][0].campaign()
    pump(nodes)
    leader = nodes[1][0]
    payload = b"x" * 100
    wall, cpu = time.perf_counter(), time.process_time()
    committed = 0
    while committed < entries:
        if one_by_one:
            for _ in range(batch):
                leader.propose(payload)
        else:
            leader.propose_batch([payload] * batch)
        committed += pump(nodes)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return committed / wall, cpu * 1e6 / committed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=0, help="proposals per run (default: scaled)")
    ap.add_argument("--batch", type=int, action="append", help="batch size(s); default 1 16 256")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--one-by-one", action="store_true", help="one propose() per entry")
    args = ap.parse_args()
    print(f"{args.nodes} in-memory nodes, 100-byte proposals, one process")
    print(f"{'batch':>6} {'committed/s':>12} {'CPU us/proposal':>16}")
    for batch in args.batch or [1, 16, 256]:
        entries = args.entries or min(300_000, 20_000 * batch)
        rate, cpu_us = run(args.nodes, batch, entries, args.one_by_one)
        print(f"{batch:>6} {rate:>12,.0f} {cpu_us:>16.1f}")


if __name__ == "__main__":
    main()
