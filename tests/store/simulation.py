"""Several real stores in one process, on a simulated network and clock.

Each store is a real `Store` over its own LMDB data dir, driven turn by turn
the way its ZeroMQ shell drives it; only the sockets and the clock are
simulated. Time jumps from event to event (a frame arriving, a tick due, a
client's timer), so seconds of cluster time cost milliseconds. A seeded
RNG decides everything that varies: delays, drops, partitions, crashes (a
store is dropped between turns or in the middle of one, before its batch
is committed, and restarted later from its data dir), splits, replica
changes and leader transfers, and what the clients do. Clients keep
sessions and retry as `AsyncClient` does, and record a history for the
linearizability checker.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multiraft.errors import (
    EpochNotMatch,
    InvalidRequest,
    KeyNotInRegion,
    NotLeader,
    RegionNotFound,
    ServerBusy,
    StoreError,
    Timeout,
)
from multiraft.protocol import wire
from multiraft.protocol.region import VOTER, Region
from multiraft.protocol.router import RegionRouter
from multiraft.security.trust import PLAIN
from multiraft.store.config import StoreConfig
from multiraft.store.snapshot_transfer import TransferConfig
from multiraft.store.store import Store, TurnOutput
from multiraft.verify.history import Op

START = 1000.0
"""The clock's reading when the simulation starts (seconds)."""
BUSY_AGAIN = 0.001
MAX_STEPS_AT_ONCE = 10_000
"""Steps without the clock moving before the simulation counts as stuck."""
"""A store with more to do at once turns again this much later."""
ATTEMPT_TIMEOUT = 0.5
OP_TIMEOUT = 6.0
KEYS = [bytes([c]) for c in b"acegikmoqs"]
SPLIT_KEYS = [bytes([c]) for c in b"bdfhjlnpr"]


def store_addr(store_id: int) -> str:
    return f"127.0.0.1:{20000 + store_id}"


@dataclass(order=True)
class Packet:
    at: float
    seq: int
    to_store: int = field(compare=False)
    """0 for a client."""
    to_client: bytes = field(compare=False)
    identity: bytes = field(compare=False)
    """The sender's identity as the receiving ROUTER sees it."""
    frame: bytes = field(compare=False)


class SimStore:
    def __init__(self, config: StoreConfig) -> None:
        self.id = config.store_id
        self.config = config
        self.store: Store | None = None
        self.inbox: list[tuple[bytes, bytes]] = []
        self.undelivered: set[int] = set()
        self.busy_at: float | None = None
        self.restart_at: float | None = None
        self.paused_until = -math.inf
        """SIGSTOPped until then: frames queue up, no turn runs, the clock
        moves on."""
        self.fsync_blocked = False
        """A failpoint: the next turn stops in its commit until unblocked."""
        self.in_fsync: TurnOutput | None = None

    @property
    def up(self) -> bool:
        return self.store is not None

    def due(self, now: float) -> bool:
        s = self.store
        if s is None or now < self.paused_until or self.in_fsync is not None:
            return False
        busy = self.busy_at is not None and self.busy_at <= now
        return bool(self.inbox or busy or now >= s.next_tick)

    def next_event(self) -> float:
        if self.store is None:
            return self.restart_at if self.restart_at is not None else math.inf
        if self.in_fsync is not None:
            return math.inf
        if self.paused_until > -math.inf:
            return self.paused_until  # due() refuses until then; then as usual
        if self.inbox:
            return -math.inf
        at = self.store.next_tick
        return min(at, self.busy_at) if self.busy_at is not None else at


class SimCluster:
    def __init__(
        self, root: Path, seed: int, stores: int = 4, replicas: int = 3, hibernate: bool = True
    ) -> None:
        self.rng = random.Random(seed)
        self.now = START
        self._seq = 0
        self._queue: list[Packet] = []
        self.cut: set[frozenset[int]] = set()
        """Store pairs that cannot reach each other."""
        self.drop_rate = 0.0
        self.max_delay = 0.005
        self.mid_turn_crash_rate = 0.0
        """Chance that a store dies in a turn, before its batch is committed."""
        members = {i: store_addr(i) for i in range(1, stores + 1)}
        self.stores: dict[int, SimStore] = {}
        for sid in members:
            config = StoreConfig(
                sid,
                members[sid],
                str(root / f"store-{sid}"),
                members,
                replicas,
                tick_interval=0.1,
                sync=False,
                log_gc_threshold=24,
                log_gc_keep=6,
                max_store_down_time=4.0,
                snapshot=TransferConfig(chunk_bytes=64, timeout=2.0),
                hibernate=hibernate,
                # From every turn to hardly ever: replays after crashes of
                # a little or of everything applied since the start.
                apply_flush_interval=self.rng.choice([0.0, 0.05, 0.2, 1.0, 1e9]),
            )
            self.stores[sid] = SimStore(config)
            self.start(sid)
        self.clients: list[SimClient] = []
        self.crashes = 0
        self.frames = 0
        """Frames stores have sent each other."""

    # -- stores ------------------------------------------------------------

    def start(self, store_id: int) -> None:
        s = self.stores[store_id]
        s.store = Store(s.config, self.now)
        s.restart_at = None
        s.paused_until = -math.inf
        s.busy_at = None

    def crash(self, store_id: int, restart_in: float) -> None:
        """Drop a store between turns (its LMDB state is what it committed)."""
        s = self.stores[store_id]
        if s.store is None:
            return
        s.store.close()
        s.store = None
        s.inbox.clear()
        s.undelivered.clear()
        s.restart_at = self.now + restart_in
        s.fsync_blocked, s.in_fsync = False, None
        self.crashes += 1

    def pause(self, store_id: int, seconds: float) -> None:
        """SIGSTOP a store for `seconds` (between two turns)."""
        self.stores[store_id].paused_until = self.now + seconds

    def _turn(self, s: SimStore, crash_before_commit: bool) -> None:
        store = s.store
        assert store is not None
        inbox, s.inbox = s.inbox, []
        undelivered, s.undelivered = s.undelivered, set()
        out = store.turn(inbox, self.now, undelivered)
        self._send(s, out.early)
        self._reply(s, out.replies)
        if crash_before_commit:
            # Killed during the fsync: the batch never made it.
            self.crash(s.id, self.rng.uniform(0.2, 3.0))
            return
        if s.fsync_blocked:
            s.in_fsync = out
            return
        self._finish_turn(s, out)

    def unblock_fsync(self, store_id: int) -> None:
        s = self.stores[store_id]
        s.fsync_blocked = False
        out, s.in_fsync = s.in_fsync, None
        if out is not None:
            self._finish_turn(s, out)

    def _finish_turn(self, s: SimStore, out: TurnOutput) -> None:
        store = s.store
        assert store is not None
        out.batch.commit()
        self._send(s, out.late)
        done = store.advance()
        self._reply(s, done.replies)
        self._send(s, done.frames)
        s.busy_at = self.now + BUSY_AGAIN if done.busy else None

    # -- network -----------------------------------------------------------

    def _push(self, to_store: int, to_client: bytes, identity: bytes, frame: bytes) -> None:
        if self.rng.random() < self.drop_rate:
            return
        self._seq += 1
        at = self.now + self.rng.uniform(0.0002, self.max_delay)
        heapq.heappush(self._queue, Packet(at, self._seq, to_store, to_client, identity, frame))

    def _send(self, s: SimStore, frames: list[tuple[int, bytes]]) -> None:
        for to, frame in frames:
            dest = self.stores.get(to)
            if dest is None or not dest.up:
                s.undelivered.add(to)  # ZeroMQ refuses: no connection (IMMEDIATE)
            elif frozenset((s.id, to)) not in self.cut:
                self.frames += 1
                self._push(to, b"", b"store-%d" % s.id, frame)

    def _reply(self, s: SimStore, frames: list[tuple[bytes, bytes]]) -> None:
        for identity, frame in frames:
            self._push(0, identity, b"", frame)

    def request(self, client: SimClient, store_id: int, frame: bytes) -> None:
        self._push(store_id, b"", client.identity, frame)

    # -- time --------------------------------------------------------------

    def run(self, seconds: float) -> None:
        """Run `seconds` of cluster time."""
        end = self.now + seconds
        stuck = 0
        while True:
            nxt = min(
                [self._queue[0].at if self._queue else math.inf]
                + [s.next_event() for s in self.stores.values()]
                + [c.next_event() for c in self.clients]
            )
            if nxt > end:
                self.now = end
                return
            stuck = stuck + 1 if nxt <= self.now else 0
            assert stuck < MAX_STEPS_AT_ONCE, f"no progress at {self.now}"
            self.now = max(self.now, nxt)
            self._step()

    def _step(self) -> None:
        self._deliver_due()
        for s in self.stores.values():
            if not s.up and s.restart_at is not None and s.restart_at <= self.now:
                self.start(s.id)
        for sid in self.rng.sample(sorted(self.stores), len(self.stores)):
            s = self.stores[sid]
            if s.paused_until <= self.now:
                s.paused_until = -math.inf
            if s.due(self.now):
                self._turn(s, crash_before_commit=self._crash_mid_turn(s))
        for c in self.clients:
            c.on_time(self.now)

    def _deliver_due(self) -> None:
        clients = {c.identity: c for c in self.clients}
        while self._queue and self._queue[0].at <= self.now:
            p = heapq.heappop(self._queue)
            if not p.to_store:
                clients[p.to_client].on_frame(p.frame)
            elif self.stores[p.to_store].up:
                self.stores[p.to_store].inbox.append((p.identity, p.frame, PLAIN))

    def _crash_mid_turn(self, s: SimStore) -> bool:
        return self.rng.random() < self.mid_turn_crash_rate

    # -- views -------------------------------------------------------------

    def live_stores(self) -> list[Store]:
        return [s.store for s in self.stores.values() if s.store is not None]

    def leader_of(self, region_id: int) -> int | None:
        for sid, s in self.stores.items():
            if s.store is not None:
                peer = s.store.peers.get(region_id)
                if peer is not None and peer.is_leader():
                    return sid
        return None

    def close(self) -> None:
        for s in self.stores.values():
            if s.store is not None:
                s.store.close()
                s.store = None


@dataclass
class Pending:
    """One operation of a client, across its attempts."""

    kind: str
    key: bytes
    args: dict[str, Any]
    start: float
    deadline: float
    arg: Any = None
    unknown: bool = False
    request_id: int = 0
    attempt_until: float = math.inf
    retry_at: float | None = None
    region: Region | None = None


class SimClient:
    """A client with a session, a route cache and AsyncClient's retry rules,
    one operation at a time; `record` adds its operations to `history`."""

    def __init__(self, cluster: SimCluster, n: int, record: bool = True) -> None:
        self.cluster = cluster
        self.rng = random.Random(cluster.rng.getrandbits(64))
        self.n = n
        self.identity = b"client-%d" % n
        self.client_id = self.rng.getrandbits(62)
        self.seq = 0
        self.record = record
        self.routes = RegionRouter()
        self.history: list[Op] = []
        self.op: Pending | None = None
        self.refreshing: int | None = None
        self.refresh_until = 0.0
        self._next_id = 0
        self.queue: list[tuple[str, bytes, Any]] = []
        """Operations to run next (kind, key, arg); when empty, a random one."""
        self.idle_until = cluster.now
        self.running = True
        self.done: list[tuple[str, Any]] = []
        """(kind, result) of finished admin operations (Timeout: no answer)."""

    # -- what to do next ---------------------------------------------------

    def next_event(self) -> float:
        if self.op is None:
            return self.idle_until if self.running or self.queue else math.inf
        times = [self.op.deadline]
        if self.op.request_id:
            times.append(self.op.attempt_until)
        if self.op.retry_at is not None:
            times.append(self.op.retry_at)
        if self.refreshing is not None:
            times.append(self.refresh_until)
        return min(times)

    def on_time(self, now: float) -> None:
        op = self.op
        if op is None:
            if now >= self.idle_until and (self.running or self.queue):
                self._begin(now)
            return
        if now >= op.deadline:
            # A write still in flight may yet apply.
            op.unknown |= bool(op.request_id) and op.kind in ("put", "delete", "cas")
            self._finish(now, None, failed=True)
        elif self.refreshing is not None and now >= self.refresh_until:
            self.refreshing = None
            self._attempt(now)
        elif op.retry_at is not None and now >= op.retry_at:
            op.retry_at = None
            self._attempt(now)
        elif op.request_id and now >= op.attempt_until:
            # No answer in time: a write may or may not have applied.
            op.unknown |= op.kind in ("put", "delete", "cas")
            if op.region is not None:
                self.routes.set_leader(op.region.id, None)
            op.request_id = 0
            self._attempt(now)

    def _begin(self, now: float) -> None:
        if self.queue:
            kind, key, arg = self.queue.pop(0)
        else:
            kind, key, arg = self._random_op()
        args: dict[str, Any] = {}
        if kind in ("put", "delete", "cas"):
            self.seq += 1
            args = {"client": self.client_id, "seq": self.seq, "acked": self.seq}
        if kind == "put":
            args["value"] = arg
        elif kind == "cas":
            args["expected"], args["new"] = arg
        elif kind == "change_peer":
            args["store"], args["change"] = arg
        elif kind == "transfer_leader":
            args["store"] = arg
        self.op = Pending(kind, key, args, now, now + OP_TIMEOUT, arg)
        self._attempt(now)

    def _random_op(self) -> tuple[str, bytes, Any]:
        rng = self.rng
        key = rng.choice(KEYS)
        roll = rng.random()
        value = b"%d.%d" % (self.client_id % 1000, self.seq + 1)
        if roll < 0.4:
            return "get", key, None
        if roll < 0.7:
            return "put", key, value
        if roll < 0.8:
            return "delete", key, None
        expected = rng.choice([None, b"%d.%d" % (self.client_id % 1000, self.seq)])
        return "cas", key, (expected, value)

    # -- attempts ------------------------------------------------------------

    def _attempt(self, now: float) -> None:
        op = self.op
        assert op is not None
        region = self.routes.lookup(op.key)
        if region is None:
            self._refresh(now)
            return
        op.region = region
        store = self._target(region)
        self._next_id += 1
        op.request_id = self._next_id
        op.attempt_until = now + ATTEMPT_TIMEOUT
        args = dict(op.args, region=region.id, epoch=region.epoch.to_wire())
        if op.kind in ("get", "put", "delete", "cas", "split"):
            args["key"] = op.key
        request = wire.Request(op.request_id, op.kind, args)
        self.cluster.request(self, store, wire.encode_request(request))

    def _target(self, region: Region) -> int:
        leader = self.routes.leader_of(region.id)
        if leader is not None:
            return leader
        voters = [p.store_id for p in region.peers if p.role == VOTER]
        return self.rng.choice(voters or sorted(self.cluster.stores))

    def _refresh(self, now: float) -> None:
        self._next_id += 1
        self.refreshing = self._next_id
        self.refresh_until = now + ATTEMPT_TIMEOUT
        store = self.rng.choice(sorted(self.cluster.stores))
        frame = wire.encode_request(wire.Request(self.refreshing, "regions", {}))
        self.cluster.request(self, store, frame)

    # -- answers -------------------------------------------------------------

    def on_frame(self, frame: bytes) -> None:
        msg = wire.decode_client_frame(frame)
        replies = msg.replies if isinstance(msg, wire.ReplyBatch) else [msg]
        for rep in replies:
            assert isinstance(rep, wire.Reply)
            self._on_reply(rep)

    def _on_reply(self, rep: wire.Reply) -> None:
        now = self.cluster.now
        if rep.request_id == self.refreshing:
            self.refreshing = None
            if rep.ok:
                self._learn_directory(rep.result)
            if self.op is not None:
                self.op.retry_at = now + self.rng.uniform(0.01, 0.05)
            return
        op = self.op
        if op is None or rep.request_id != op.request_id:
            return  # an answer to an attempt given up on
        op.request_id = 0
        if rep.ok:
            self._finish(now, rep.result)
            return
        err = wire.error_from_wire(rep.result)
        if isinstance(err, InvalidRequest | StoreError):
            if op.kind in ("split", "change_peer", "transfer_leader"):
                self._finish(now, err)
                return
            raise AssertionError(f"{op.kind} refused: {err!r}")
        self._learn_error(op, err)
        op.retry_at = now + self.rng.uniform(0.0, 0.03)

    def _learn_directory(self, result: dict[str, Any]) -> None:
        for desc, leader in result["regions"]:
            region = Region.from_wire(desc)
            self.routes.update(region)
            self.routes.set_leader(region.id, leader)

    def _learn_error(self, op: Pending, err: Exception) -> None:
        region = op.region
        assert region is not None
        if isinstance(err, NotLeader):
            if isinstance(err.detail.get("region"), list):
                self.routes.update(Region.from_wire(err.detail["region"]))
            self.routes.set_leader(region.id, err.leader_store_id)
        elif isinstance(err, EpochNotMatch | KeyNotInRegion):
            descs = err.detail.get("regions") or [err.detail.get("region")]
            for desc in descs:
                self.routes.update(Region.from_wire(desc))
            if self.routes.get(region.id) == region:
                self.routes.remove(region.id)
        elif isinstance(err, RegionNotFound):
            self.routes.remove(region.id)
        elif not isinstance(err, ServerBusy):
            raise AssertionError(f"unexpected refusal {err!r}")

    def _finish(self, now: float, result: Any, failed: bool = False) -> None:
        op = self.op
        assert op is not None
        self.op = None
        self.idle_until = now + self.rng.uniform(0.0, 0.02)
        if op.kind in ("split", "change_peer", "transfer_leader"):
            self.done.append((op.kind, Timeout(op.kind) if failed else result))
            return
        if not self.record or (failed and not op.unknown):
            return  # a read that never returned, a write never applied: no effect
        outcome = "info" if failed else "ok"
        result = result if op.kind in ("get", "cas") and not failed else None
        key = op.key.decode()
        self.history.append(Op(self.n, key, op.kind, op.arg, outcome, result, op.start, now))


def run_op(cluster: SimCluster, client: SimClient, kind: str, key: bytes, arg: Any) -> Any:
    """Run one operation of `client` to its end (10 s of cluster time at
    most); its result."""
    client.queue.append((kind, key, arg))
    for _ in range(100):
        cluster.run(0.1)
        if client.op is None and not client.queue:
            break
    op = client.history[-1]
    assert op.type == "ok", f"{kind} did not finish"
    return op.result


def first_write(cluster: SimCluster) -> tuple[SimClient, int]:
    """A client of our own (no random operations), `k` = `v1` written
    through it once the cluster has a leader; the client and the leader's
    store."""
    client = SimClient(cluster, 1)
    client.running = False
    cluster.clients.append(client)
    cluster.run(3.0)
    run_op(cluster, client, "put", b"k", b"v1")
    leader = cluster.leader_of(1)
    assert leader is not None
    return client, leader


def replica_views(cluster: SimCluster) -> dict[int, list[tuple[int, int, list]]]:
    """For each region: (store, applied index, data in its range) of every
    replica on a running store."""
    out: dict[int, list[tuple[int, int, list]]] = {}
    for sid, s in cluster.stores.items():
        if s.store is None:
            continue
        for rid, peer in s.store.peers.items():
            r = peer.region
            data = s.store.ctx.applied.scan(rid, r.start, r.end, None)
            out.setdefault(rid, []).append((sid, peer.applied, data))
    return out
