"""Cost of the Raft core per entry: 3 in-memory nodes, batched proposals.

    python bench/raft_core.py [--entries N] [--batch B] [--one-by-one]

No I/O at all: this is the ceiling the core puts on a store's throughput.
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
            if not rd.hard_state.is_empty():
                storage.set_hard_state(rd.hard_state)
            inbox.extend(rd.messages)
            if node_id == 1:
                applied += len(rd.committed_entries)
            node.advance(rd)
        for m in inbox:
            nodes[m.to][0].step(m)
        if not busy and not inbox:
            return applied


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--one-by-one", action="store_true", help="one propose() per entry")
    args = ap.parse_args()
    nodes = build(args.nodes)
    nodes[1][0].campaign()
    pump(nodes)
    leader = nodes[1][0]
    payload = b"x" * 100
    start = time.perf_counter()
    done = 0
    while done < args.entries:
        if args.one_by_one:
            for _ in range(args.batch):
                leader.propose(payload)
        else:
            leader.propose_batch([payload] * args.batch)
        done += args.batch
        pump(nodes)
    elapsed = time.perf_counter() - start
    print(
        f"{args.nodes} nodes, batch {args.batch}: {done / elapsed:,.0f} entries/s "
        f"({elapsed * 1e6 / done:.1f} us per entry, all nodes together)"
    )


if __name__ == "__main__":
    main()
