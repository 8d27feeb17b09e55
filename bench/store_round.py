"""The stores' CPU per put, with no sockets, no fsync and no other process
in the way: three real `Store`s in this process, driven turn by turn in
lockstep on a simulated clock that moves as their CPU time does, under a
put load keeping a fixed number of requests in flight over uniform keys,
each sent straight to its region's leader. What it counts is the time the three stores spend in
their turns, commits and advances, per acknowledged put: the per-region
cost of a Raft round shows up directly as regions grow.

    python bench/store_round.py                       # 16, 256, 1,024 regions
    python bench/store_round.py --regions 256 --puts 20000 --profile out.prof

Deterministic up to the OS (same seed, same schedule); a few seconds per
region count.
"""

from __future__ import annotations

import argparse
import cProfile
import random
import tempfile
import time
from pathlib import Path

from multiraft.bench.workload import key_of, split_keys
from multiraft.errors import NotLeader
from multiraft.protocol import wire
from multiraft.protocol.limits import MAX_SPLIT_KEYS
from multiraft.security.trust import PLAIN
from multiraft.store.config import StoreConfig
from multiraft.store.shell import settle_collector
from multiraft.store.store import Store

MIN_STEP = 0.0005
"""The least simulated time a lockstep round of the three stores takes."""
KEYS = 100_000
CLIENT = b"bench-client"


class Lockstep:
    """Three stores exchanging frames at once, every step."""

    def __init__(self, root: Path, sync: bool) -> None:
        self.now = 1000.0
        members = {i: f"127.0.0.1:{21000 + i}" for i in (1, 2, 3)}
        self.stores = {
            sid: Store(StoreConfig(sid, addr, str(root / f"s{sid}"), members, sync=sync), self.now)
            for sid, addr in members.items()
        }
        self.inbox: dict[int, list[tuple[bytes, bytes, object]]] = {s: [] for s in members}
        self.to_client: list[bytes] = []
        self.cpu = 0.0

    def send(self, store_id: int, frame: bytes, identity: bytes = CLIENT) -> None:
        self.inbox[store_id].append((identity, frame, PLAIN))

    def step(self) -> None:
        """Each store turns once; the clock moves on by the CPU time that
        took (one core running the three stores): ticks and flushes come
        as often, per unit of work, as on a one-core machine."""
        cpu = self.cpu
        for sid, store in self.stores.items():
            inbox, self.inbox[sid] = self.inbox[sid], []
            t0 = time.process_time()
            out = store.turn(inbox, self.now)
            frames = list(out.early)
            replies = list(out.replies)
            out.batch.commit()
            frames += out.late
            done = store.advance()
            replies += done.replies
            frames += done.frames
            self.cpu += time.process_time() - t0
            for to, frame in frames:
                self.send(to, frame, b"store-%d" % sid)
            self.to_client += [frame for _, frame in replies]
        self.now += max(MIN_STEP, self.cpu - cpu)

    def replies(self) -> list[wire.Reply]:
        out: list[wire.Reply] = []
        for frame in self.to_client:
            msg = wire.decode_client_frame(frame)
            out += msg.replies if isinstance(msg, wire.ReplyBatch) else [msg]  # type: ignore[list-item]
        self.to_client = []
        return out

    def leader(self, region_id: int) -> int | None:
        for sid, store in self.stores.items():
            peer = store.peers.get(region_id)
            if peer is not None and peer.is_leader() and peer.raw_node.lease_read_index():
                return sid
        return None

    def run_until(self, done, steps: int = 100_000) -> None:  # noqa: ANN001
        for _ in range(steps):
            if done():
                return
            self.step()
        raise SystemExit("the cluster did not get there")

    def close(self) -> None:
        for store in self.stores.values():
            store.close()


def split(c: Lockstep, regions: int) -> None:
    c.run_until(lambda: c.leader(1) is not None)
    keys = split_keys(KEYS, regions)
    while keys:  # the last region, cut at most MAX_SPLIT_KEYS times per request
        c.run_until(lambda: all(c.leader(r) is not None for r in c.stores[1].peers))
        last = max(c.stores[1].peers.values(), key=lambda p: p.region.start).region
        cut, keys = keys[:MAX_SPLIT_KEYS], keys[MAX_SPLIT_KEYS:]
        args = {"region": last.id, "epoch": last.epoch.to_wire(), "keys": cut}
        c.send(c.leader(last.id), wire.encode_request(wire.Request(1, "split", args)))  # type: ignore[arg-type]
        want = len(c.stores[1].peers) + len(cut)
        c.run_until(lambda: all(len(s.peers) == want for s in c.stores.values()))  # noqa: B023
    c.run_until(lambda: all(c.leader(r) is not None for r in c.stores[1].peers))
    c.replies()


def load(c: Lockstep, in_flight: int, puts: int, seed: int) -> tuple[float, int]:
    """Run `puts` acknowledged puts; (store CPU seconds, steps) they took."""
    rng = random.Random(seed)
    router = c.stores[1].ctx.router
    regions = {r: c.leader(r) for r in c.stores[1].peers}
    pending: dict[int, tuple[int, int]] = {}
    next_id = seed << 40  # replies to an earlier load's puts are not ours
    seq = next_id
    done = steps = 0
    value = b"v" * 100
    cpu0 = c.cpu
    while done < puts:
        batches: dict[int, list[bytes]] = {}
        acked = min((s for _, s in pending.values()), default=seq + 1) - 1
        while len(pending) < in_flight:
            key = key_of(rng.randrange(KEYS))
            region = router.lookup(key)
            assert region is not None
            next_id += 1
            seq += 1
            args = {"region": region.id, "epoch": region.epoch.to_wire(), "key": key}
            args |= {"value": value, "client": 1, "seq": seq, "acked": acked}
            store = regions[region.id] or 1
            pending[next_id] = (region.id, seq)
            batches.setdefault(store, []).append(
                wire.pack_request(wire.Request(next_id, "put", args))
            )
        for store, packed in batches.items():
            c.send(store, wire.encode_batch(wire.KIND_REQUESTS, packed))
        c.step()
        steps += 1
        for rep in c.replies():
            if rep.request_id not in pending:
                continue
            region_id, _ = pending.pop(rep.request_id)
            if rep.ok:
                done += 1
            elif isinstance(wire.error_from_wire(rep.result), NotLeader):
                regions[region_id] = c.leader(region_id)
            else:
                raise SystemExit(f"put failed: {wire.error_from_wire(rep.result)}")
    return c.cpu - cpu0, steps


def measure(regions: int, in_flight: int, puts: int, sync: bool, profile: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="store-round-") as tmp:
        c = Lockstep(Path(tmp), sync)
        try:
            split(c, regions)
            settle_collector()  # as a store's start does
            load(c, in_flight, puts // 5, seed=1)  # warm up
            prof = cProfile.Profile() if profile else None
            if prof:
                prof.enable()
            cpu, steps = load(c, in_flight, puts, seed=2)
            if prof:
                prof.disable()
                prof.dump_stats(profile)
        finally:
            c.close()
    print(
        f"{regions:>6} regions, {in_flight} in flight: {1e6 * cpu / puts:6.1f} µs of store CPU"
        f" per put (3 stores), {puts / steps:6.1f} puts per step"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regions", type=int, nargs="+", default=[16, 256, 1024])
    p.add_argument("--in-flight", type=int, default=1024)
    p.add_argument("--puts", type=int, default=30_000)
    p.add_argument("--sync", action="store_true", help="fsync every commit (off: CPU only)")
    p.add_argument("--profile", help="cProfile the measured puts into this file")
    args = p.parse_args(argv)
    for n in args.regions:
        measure(n, args.in_flight, args.puts, args.sync, args.profile)


if __name__ == "__main__":
    main()
