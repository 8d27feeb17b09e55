"""Store: one process, one LMDB environment, one ZeroMQ address, many regions.

The loop is the batch system. Each turn:

1. receive every frame waiting (Raft batches from other stores, client requests)
   and step or queue each;
2. tick every region if a tick is due (logical clock, `tick_interval` seconds);
3. propose each region's queued writes as one entry, and one ReadIndex for
   its queued reads;
4. take the Ready of every region that has one; send the appends and
   heartbeats of leaders at once (followers write while the leader writes);
   write all their entries, HardStates, snapshots and applied entries into
   ONE WriteBatch; send the answers so far (those of the writes just
   applied among them); commit it (one fsync);
5. send the other Raft messages (responses, votes), one frame per
   destination store;
6. advance every Ready, serve reads whose read index is applied, and answer
   them, one frame per client.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import msgpack

from ..protocol import wire
from ..protocol.region import Region
from ..protocol.router import RegionRouter
from ..raft import MessageType, Ready, StateType
from ..storage import ingest, kv
from ..storage.engine import WriteBatch
from ..storage.peer_storage import PeerStorage
from ..storage.snapshot import SnapshotHeader
from ..transport import codec
from ..transport.zmq import Transport
from .apply import Applier, destroy_region, is_tombstoned, load_sessions
from .commands import SplitCommand, encode_split, err, ok
from .join import ask_to_join
from .membership import Propose, Step, TransferFirst, next_step
from .meta import load_regions, open_data_dir
from .peer import Handle, Peer, RaftSettings, ReadOp
from .replicas import ReplicaScheduler
from .scheduler import Scheduler
from .service import Service
from .session import SessionTable
from .snapshot_transfer import TransferConfig
from .snapshots import Install, SnapshotStreams
from .split_check import RegionSize, SplitPolicy
from .stores import StoreBook

log = logging.getLogger(__name__)

BALANCE_TICKS = 20
"""Ticks between two leader-balance rounds (2 s at the default tick)."""
INSTALL_TXNS_PER_TURN = 2
"""LMDB transactions (each up to 4 MiB or 20,000 deletes) of a snapshot's
install, or of clearing a removed replica's data, per loop turn: the other
regions wait at most that long."""
GC_STEPS = 16
"""A log over its GC threshold loses at most threshold/GC_STEPS entries per turn."""
GOSSIP_TICKS = 10
"""Ticks between two rounds of region gossip (1 s at the default tick)."""
REPLY_BATCH_BYTES = 1024 * 1024
"""A REPLIES frame is closed once this full (a bigger reply goes alone)."""
DIRECTORY_WAIT_ROUNDS = 3
"""Gossip rounds a restarted store waits for others' gossip before it
answers directory requests from what it has."""


EARLY_MESSAGES = frozenset((MessageType.APP, MessageType.HEARTBEAT))


def leader_sends_early(peer: Peer, rd: Ready) -> tuple[list, list]:
    """Split a Ready's messages into those sent before its entries are
    persisted and those sent after. A leader whose term and vote are already
    durable sends its appends and heartbeats at once, so followers write
    while it writes (Raft thesis 10.2.1): its own log counts toward commit
    only once persisted, and a crash before that leaves it unable to lead
    that term again. Everything else (responses, votes) waits for the fsync."""
    hs, durable = rd.hard_state, peer.storage.hard_state
    term_durable = hs is None or (hs.term, hs.vote) == (durable.term, durable.vote)
    if not (term_durable and peer.is_leader()):
        return [], rd.messages
    early, late = [], []
    for m in rd.messages:
        (early if m.type in EARLY_MESSAGES else late).append(m)
    return early, late


@dataclass
class StoreConfig:
    store_id: int
    addr: str
    data_dir: str
    initial_cluster: dict[int, str] | None = None
    replicas: int = 3
    tick_interval: float = 0.1
    raft: RaftSettings = field(default_factory=RaftSettings)
    sync: bool = True
    log_gc_threshold: int = 4096
    """Compact a region's log while it holds more than this many applied
    entries (a step per turn)..."""
    log_gc_keep: int = 1024
    """...never discarding the last this many, so a briefly lagging
    follower still catches up from the log; one further behind gets a
    snapshot."""
    split_policy: SplitPolicy = field(default_factory=SplitPolicy)
    join: str | None = None
    """A member's address, to join its running cluster on the first start."""
    max_store_down_time: float = 1800.0
    """Seconds of silence after which a store counts as gone for good and
    the regions it held are re-replicated elsewhere."""
    snapshot: TransferConfig = field(default_factory=TransferConfig)


class Store:
    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.store_id = config.store_id
        join = partial(ask_to_join, config.join, config.store_id, config.addr)
        self.engine, self.meta = open_data_dir(
            config.data_dir,
            config.store_id,
            config.initial_cluster,
            config.replicas,
            config.sync,
            join if config.join else None,
        )
        self.cluster_id = self.meta.cluster_id
        self.stores = self.meta.stores
        self.router = RegionRouter()
        self._active: set[int] = set()
        """Regions that got input since the last turn."""
        self.peers: dict[int, Peer] = {}
        self._clears: list[kv.RangeClear] = []
        """Data of removed replicas, deleted a few transactions per turn."""
        try:
            ingest.recover(self.engine)  # before any replica reads its region
        except Exception:
            self.engine.close()
            raise
        for region, storage in load_regions(self.engine):
            self._add_peer(region, storage, load_sessions(self.engine, region.id))
        try:
            self.transport = Transport(config.addr, self.store_id)
        except Exception:
            self.engine.close()
            raise
        live_window = 3 * config.raft.election_tick * config.tick_interval
        self.book = StoreBook(
            self.meta, self.engine, self.transport, live_window, config.max_store_down_time
        )
        self.service = Service(self, self._reply)
        self.snapshots = SnapshotStreams(self, config.snapshot)
        self.installs: dict[int, tuple[Install, Ready]] = {}
        """Regions whose snapshot's data is going in, with the held Ready."""
        self._replies: list[tuple[Handle, Any]] = []
        self.scheduler = Scheduler(self)
        self.replicas = ReplicaScheduler(self)
        self._ticks = 0
        self._stopping = False

    def _add_peer(self, region: Region, storage: PeerStorage, sessions: SessionTable) -> Peer:
        for clear in [c for c in self._clears if c.overlaps(region.start, region.end)]:
            clear.finish()  # old data must be gone before the new replica's arrives
            self._clears.remove(clear)
        peer = Peer(self.store_id, region, storage, sessions, self.config.raft)
        self.peers[region.id] = peer
        self.router.update(region)
        self.touch(peer)
        return peer

    # -- the loop -------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish its turn and return (safe from a signal handler)."""
        self._stopping = True

    def run(self) -> None:
        tick = self.config.tick_interval
        next_tick = time.monotonic() + tick
        busy = False
        try:
            while not self._stopping:
                wait_ms = 0 if busy else max(0, int((next_tick - time.monotonic()) * 1000))
                for identity, frame in self.transport.recv_all(wait_ms):
                    self._on_frame(identity, frame)
                now = time.monotonic()
                if now >= next_tick:
                    self._tick()
                    next_tick = max(next_tick + tick, now)
                busy = self.turn()
        finally:
            self.close()

    def touch(self, peer: Peer) -> None:
        """`peer` got input this turn: it may have work for turn() to do."""
        self._active.add(peer.region.id)

    def _tick(self) -> None:
        for peer in self.peers.values():
            if peer.region.id not in self.installs:
                peer.raw_node.tick()
        self._active.update(self.peers)
        self._ticks += 1
        if self._ticks % GOSSIP_TICKS == 0:
            self._gossip()
            self.scheduler.check_splits()
            self.replicas.check_replicas(balance=self._ticks % BALANCE_TICKS == 0)
        if self._ticks % BALANCE_TICKS == 0:
            self.scheduler.balance_leaders()

    def _gossip(self) -> None:
        """Tell every other store about the regions this store leads (newer
        epoch wins on arrival), so any store can route any key; about every
        store it knows, so a joined store becomes known to all; and about
        itself, for the scheduling decisions of the others."""
        led = [[p.region.to_wire(), self.store_id] for p in self.peers.values() if p.is_leader()]
        extras = {"regions": led, "stores": self.stores, "stats": self.own_stats()}
        batch = codec.PeerBatch(self.cluster_id, self.store_id, [], extras)
        frame = codec.encode_peer_batch(batch)
        for store_id in self.stores:
            if store_id != self.store_id:
                self.transport.send_to_store(store_id, frame)

    def own_stats(self) -> dict:
        disk = shutil.disk_usage(self.config.data_dir)
        return {
            "regions": len(self.peers),
            "leaders": sum(p.is_leader() for p in self.peers.values()),
            "capacity": disk.total,
            "available": disk.free,
        }

    def _learn_regions(self, entries: Any) -> None:
        for desc, leader in entries:
            region = Region.from_wire(desc)
            peer = self.peers.get(region.id)
            if peer is not None:
                # Our own replica knows better, unless the region's
                # membership moved on without it.
                me = region.peer_on(self.store_id)
                stale = me is None or me.peer_id != peer.peer_id
                if stale and region.epoch.conf_ver > peer.region.epoch.conf_ver:
                    self._destroy_stale_peer(peer, region)
                continue
            if self.router.update(region) or self.router.get(region.id) == region:
                self.router.set_leader(region.id, leader)

    def turn(self) -> bool:
        """Steps 3-6 of the loop for the regions that got input: propose,
        send leaders' appends, apply, answer, persist once, send the rest,
        serve reads. Returns whether some region has
        more to do at once (e.g. a leader that commits once its own append
        is persisted)."""
        active = [self.peers[r] for r in self._active if r in self.peers and r not in self.installs]
        self._active = set()
        for peer in active:
            peer.propose_pending(self._reply)
        readies = [(p, p.raw_node.ready()) for p in active if p.raw_node.has_ready()]
        installed = self._continue_installs()
        readies = self._hold_snapshots(readies) + [(i.peer, rd) for i, rd in installed]
        if self._clears and not self._clears[0].step(INSTALL_TXNS_PER_TURN):
            self._clears.pop(0)
        if readies:
            self._handle_readies(readies, {i.peer.region.id: i.header for i, _ in installed})
        self.snapshots.pump(time.monotonic())
        self._flush_replies()
        for peer, _ in readies:
            if peer.raw_node.has_ready():
                self.touch(peer)
        return bool(self._active or self.installs or self._clears)

    def _hold_snapshots(self, readies: list[tuple[Peer, Ready]]) -> list[tuple[Peer, Ready]]:
        """Readies with a snapshot wait while its data goes in, a few
        transactions per turn; the replica is frozen meanwhile (no ticks, no
        messages, no Ready), so the other regions keep going."""
        rest = []
        for peer, rd in readies:
            if rd.snapshot is None:
                rest.append((peer, rd))
            else:
                install = self.snapshots.start_install(peer, rd.snapshot)
                self.installs[peer.region.id] = (install, rd)
        return rest

    def _continue_installs(self) -> list[tuple[Install, Ready]]:
        """The held Readies whose snapshot data is now all in."""
        done = []
        for region_id, (install, rd) in list(self.installs.items()):
            if install.step(INSTALL_TXNS_PER_TURN):
                del self.installs[region_id]
                done.append((install, rd))
        return done

    def _handle_readies(
        self, readies: list[tuple[Peer, Ready]], snapshot_headers: dict[int, SnapshotHeader]
    ) -> None:
        """`snapshot_headers`: of the Readies whose snapshot's data is in."""
        early = [leader_sends_early(peer, rd) for peer, rd in readies]
        self._send([(peer, msgs) for (peer, _), (msgs, _) in zip(readies, early, strict=True)])
        batch = self.engine.batch()
        applier = Applier(self.engine, batch, self._reply)
        installed = []
        for peer, rd in readies:
            if rd.snapshot is not None:
                # Its data is in (`_continue_installs`); the Raft state and
                # the entries after the snapshot go in this batch.
                header = snapshot_headers[peer.region.id]
                ingest.finish(batch, peer.storage, rd.snapshot, header)
                installed.append(header)
                peer.region = Region.from_wire(msgpack.unpackb(header.descriptor))
                self.router.update(peer.region)
            peer.storage.append(batch, rd.entries)
            if rd.hard_state is not None:
                peer.storage.set_hard_state(batch, rd.hard_state)
            applier.apply(peer, rd.committed_entries)
            if peer not in applier.removed:
                self._maybe_compact(peer, rd, batch)
        # The answers so far go before the commit: those of applied entries
        # may, since the entries are committed (durable on a majority), so a
        # crash now only replays them to the same results.
        self._flush_replies()
        batch.commit()
        for peer in applier.changed:
            self.router.update(peer.region)
        for header in installed:
            self.snapshots.installed(header)
        self._send([(peer, msgs) for (peer, _), (_, msgs) in zip(readies, early, strict=True)])
        for peer, rd in readies:
            if rd.snapshot is not None:
                peer.sessions = load_sessions(self.engine, peer.region.id)
                peer.size = RegionSize()
                peer.forget_proposals_upto(rd.snapshot.metadata.index)
            self._after_ready(peer, rd)
        for parent, region, storage, sessions in applier.splits:
            self._start_split_peer(parent, region, storage, sessions)
        for peer in applier.removed:
            self._drop_peer(peer)

    def _start_split_peer(
        self, parent: Peer, region: Region, storage: PeerStorage, sessions: SessionTable
    ) -> None:
        """The split is durable: run the new region's replica here, and let the
        parent's leader campaign at once instead of waiting for a timeout."""
        self.router.update(parent.region)
        self._add_peer(region, storage, sessions)
        if parent.is_leader():
            self.peers[region.id].raw_node.campaign()

    def _drop_peer(self, peer: Peer) -> None:
        """Forget a replica whose state is already deleted: its region no
        longer has a replica here (the router keeps the descriptor)."""
        log.info("region %d: replica removed from this store", peer.region.id)
        del self.peers[peer.region.id]
        self._clears.append(kv.RangeClear(self.engine, peer.region.start, peer.region.end))
        peer.abandon_requests(self._reply)
        self.router.update(peer.region)

    def _destroy_stale_peer(self, peer: Peer, newer: Region) -> None:
        """`newer` (from gossip) shows this store's replica was removed in a
        change it never applied (it was cut off): delete it for good."""
        # Every membership up to `newer`'s that leaves this store out, or up
        # to the one before it that names this store again, is stale.
        readded = newer.peer_on(self.store_id) is not None
        conf_ver = newer.epoch.conf_ver - 1 if readded else newer.epoch.conf_ver
        batch = self.engine.batch()
        destroy_region(batch, peer.storage, conf_ver, peer.peer_id)
        batch.commit()
        peer.region = newer
        self._drop_peer(peer)

    def _maybe_compact(self, peer: Peer, rd: Ready, batch: WriteBatch) -> None:
        """Raft log GC, in the turn's batch: every replica compacts its own
        log. Past the threshold, a turn discards at most 1/GC_STEPS of it,
        so the work is spread over turns instead of making one turn's commit
        (and every request waiting on it) many times slower."""
        if not rd.committed_entries:
            return
        applied = rd.committed_entries[-1].index
        first = peer.storage.first_index()
        threshold = self.config.log_gc_threshold
        if applied - first + 1 > threshold:
            step = max(1, threshold // GC_STEPS)
            peer.storage.compact(batch, min(applied - self.config.log_gc_keep, first - 1 + step))

    def _after_ready(self, peer: Peer, rd: Ready) -> None:
        if rd.soft_state is not None and rd.soft_state.raft_state != StateType.LEADER:
            peer.on_leadership_lost(self._reply)
        for rs in rd.read_states:
            reads = peer.read_waits.pop(rs.request_ctx, None)
            if reads:
                peer.ready_reads.append((rs.index, reads))
        peer.raw_node.advance(rd)
        self._serve_reads(peer)

    def _serve_reads(self, peer: Peer) -> None:
        applied = peer.storage.apply_state.applied_index
        while peer.ready_reads and peer.ready_reads[0][0] <= applied:
            _, reads = peer.ready_reads.popleft()
            for op, handle in reads:
                self._reply(handle, self._read(peer, op))

    def _read(self, peer: Peer, op: ReadOp) -> Any:
        region = peer.region
        if op.version != region.epoch.version:
            # Split since the read was accepted: the client's idea of where
            # the region ends (where a scan goes on from) is out of date.
            return err(
                "EpochNotMatch",
                f"region {region.id} split while the read waited",
                {"regions": self.regions_around(region, op.key)},
            )
        if not region.contains(op.key):
            return err(
                "KeyNotInRegion", f"key not in region {region.id}", {"region": region.to_wire()}
            )
        if op.op == "get":
            return ok(kv.get(self.engine, op.key))
        end = op.end
        if region.end and (not end or end > region.end):
            end = region.end
        return ok([[k, v] for k, v in kv.scan(self.engine, op.key, end, op.limit)])

    # -- network ------------------------------------------------------------

    def _on_frame(self, identity: bytes, frame: bytes) -> None:
        try:
            msg = codec.decode(frame)
        except wire.CodecError as e:
            log.warning("dropped a malformed frame of %d bytes: %s", len(frame), e)
            return
        if isinstance(msg, wire.RequestBatch):
            for req in msg.requests:
                self.service.handle(req, Handle(identity, req.request_id, batched=True))
        elif isinstance(msg, wire.Request):
            self.service.handle(msg, Handle(identity, msg.request_id))
        elif isinstance(msg, codec.PeerBatch):
            self._on_peer_batch(msg)
        elif isinstance(msg, codec.SnapChunk | codec.SnapAck):
            self.snapshots.on_frame(msg, time.monotonic())
        else:
            log.warning("dropped an unexpected %s frame", type(msg).__name__)

    def _on_peer_batch(self, batch: codec.PeerBatch) -> None:
        if batch.cluster_id != self.cluster_id:
            log.warning("dropped Raft traffic from store %d of another cluster", batch.from_store)
            return
        self.book.heard_from(batch.from_store)
        if batch.extras:
            try:
                extras = batch.extras
                self.book.learn(batch.from_store, extras.get("stats"), extras.get("stores", {}))
                self._learn_regions(extras.get("regions", []))
            except (TypeError, ValueError, AttributeError, OverflowError) as e:
                log.warning("bad gossip from store %d: %s", batch.from_store, e)
        for item in batch.items:
            if item.message.type == MessageType.PROP:
                # Stores never forward proposals: a PROP on the wire is bogus.
                log.warning("dropped a proposal sent by store %d", batch.from_store)
                continue
            if item.message.type == MessageType.SNAP:
                # Snapshots arrive as SNAP_CHUNK streams only (see `snapshots`).
                log.warning("dropped a MsgSnap in a Raft batch from store %d", batch.from_store)
                continue
            if item.region_id in self.installs:
                continue  # frozen while its snapshot goes in; Raft resends
            peer = self.peers.get(item.region_id) or self.maybe_create_peer(item)
            if peer is None or item.message.to != peer.peer_id:
                log.debug("no peer for region %d message to %d", item.region_id, item.message.to)
                continue
            self.touch(peer)
            refused = peer.raw_node.step(item.message)
            if refused is not None:
                log.debug(
                    "region %d: message from store %d not taken: %s",
                    item.region_id,
                    batch.from_store,
                    refused,
                )

    def maybe_create_peer(self, item: codec.RaftItem) -> Peer | None:
        """A message for a region with no replica here (as TiKV does it): if
        no local region overlaps its range, start an empty replica that the
        leader fills with a snapshot. If one overlaps, this store has not
        applied the split that creates it yet: the leader will retry."""
        try:
            region = Region.from_wire(item.region)
        except (TypeError, ValueError, OverflowError):
            return None
        me = region.peer_on(self.store_id)
        if region.id != item.region_id or me is None or me.peer_id != item.message.to:
            return None
        if any(p.region.overlaps(region) for p in self.peers.values()):
            return None
        if is_tombstoned(self.engine, region, me.peer_id):
            log.debug("region %d: message for a removed replica", region.id)
            return None
        log.info("region %d: creating an empty replica from a message", region.id)
        return self._add_peer(region, PeerStorage(self.engine, region.id), SessionTable())

    def _send(self, outgoing: list[tuple[Peer, list]]) -> None:
        """One frame per destination store for everything of this turn."""
        by_store: dict[int, list[tuple[Peer, Any]]] = defaultdict(list)
        now = time.monotonic()
        for peer, msgs in outgoing:
            for m in msgs:
                store = peer.store_of_peer(m.to)
                if store is None:
                    continue
                if m.type == MessageType.SNAP:
                    self.snapshots.send(peer, m, store, now)  # streamed in chunks
                    self.touch(peer)
                else:
                    by_store[store].append((peer, m))
        for store, pairs in by_store.items():
            items = [
                codec.RaftItem(
                    p.region.id,
                    (p.region.epoch.version, p.region.epoch.conf_ver),
                    m,
                    p.region_wire(),
                )
                for p, m in pairs
            ]
            frame = codec.encode_peer_batch(codec.PeerBatch(self.cluster_id, self.store_id, items))
            delivered = self.transport.send_to_store(store, frame)
            for peer, m in pairs:
                self.touch(peer)
                if not delivered:
                    peer.raw_node.report_unreachable(m.to)

    def _reply(self, handle: Handle, result: Any) -> None:
        self._replies.append((handle, result))

    def _flush_replies(self) -> None:
        """Send the answers so far: one REPLIES frame per client (more past
        REPLY_BATCH_BYTES) for requests that came batched, one REPLY each
        for the others."""
        replies, self._replies = self._replies, []
        batched: dict[bytes, list[bytes]] = defaultdict(list)
        for handle, result in replies:
            ok = result[0] == "ok"
            body = result[1] if ok else result[1:]
            if handle.batched:
                batched[handle.identity].append(wire.pack_reply(handle.request_id, ok, body))
            else:
                rep = wire.Reply(handle.request_id, ok, body)
                self.transport.reply(handle.identity, wire.encode_reply(rep))
        for identity, packed in batched.items():
            for frame in wire.batch_frames(wire.KIND_REPLIES, packed, REPLY_BATCH_BYTES):
                self.transport.reply(identity, frame)

    # -- cluster view ---------------------------------------------------------

    def propose_split(self, peer: Peer, key: bytes, handle: Handle | None) -> None:
        """Propose splitting `peer`'s region at `key` (the caller checked that
        this store leads it and that `key` lies strictly inside it)."""
        ids = self.meta.alloc_ids(self.engine, 1 + len(peer.region.peers))
        cmd = SplitCommand(peer.region.epoch.version, key, ids[0], ids[1:])
        peer.propose_admin(encode_split(cmd), handle, self._reply)
        self.touch(peer)

    def change_peer(self, peer: Peer, store_id: int, change: str, handle: Handle | None) -> Step:
        """Take the next step of a replica change of `peer`'s region (this
        store leads it); a proposal answers `handle` once applied."""
        step = next_step(peer, store_id, change, lambda: self.meta.alloc_ids(self.engine, 1)[0])
        if isinstance(step, Propose):
            log.info("region %d: proposing %s", peer.region.id, step.change.type.name)
            peer.propose_conf_change(step.change, handle, self._reply)
        elif isinstance(step, TransferFirst):
            peer.raw_node.transfer_leader(step.peer_id)
        self.touch(peer)
        return step

    def regions_around(self, region: Region, key: bytes) -> list:
        """Current descriptors for a client with a stale view of `region`:
        the region itself and the one now holding `key`."""
        out = [region.to_wire()]
        holder = self.router.lookup(key)
        if holder is not None and holder.id != region.id:
            out.append(holder.to_wire())
        return out

    def leader_hint(self, region_id: int) -> int | None:
        peer = self.peers.get(region_id)
        if peer is not None:
            return peer.leader_store()
        return self.router.leader_of(region_id)

    def directory_ready(self) -> bool:
        """Whether this store's region directory is as complete as gossip
        makes it: it heard another store, or waited out a few gossip rounds
        (the others may be down), or it is alone."""
        waited = time.monotonic() - self.book.started
        return (
            bool(self.book.stats)
            or len(self.stores) == 1
            or waited > DIRECTORY_WAIT_ROUNDS * GOSSIP_TICKS * self.config.tick_interval
        )

    def directory(self) -> dict:
        """Every region this store knows, with leader hints, and the stores."""
        regions = [[r.to_wire(), self.leader_hint(r.id)] for r in self.router.regions()]
        return {"regions": regions, "stores": dict(self.stores)}

    def status(self) -> dict:
        directory = self.directory()
        counts: dict[int, list[int]] = {sid: [0, 0] for sid in self.stores}
        for desc, leader in directory["regions"]:
            for store_id, _peer, _role in desc[4]:
                counts.setdefault(store_id, [0, 0])[0] += 1
            if leader is not None:
                counts.setdefault(leader, [0, 0])[1] += 1
        live, down = set(self.book.live()), self.book.down()
        stats = {**self.book.stats, self.store_id: self.own_stats()}
        stores = [
            {
                "id": sid,
                "addr": self.stores.get(sid, ""),
                "regions": c[0],
                "leaders": c[1],
                "up": sid in live,
                "state": self.book.state(sid, live, down),
                "capacity": stats.get(sid, {}).get("capacity"),
                "available": stats.get(sid, {}).get("available"),
            }
            for sid, c in sorted(counts.items())
        ]
        return {
            "store_id": self.store_id,
            "addr": self.config.addr,
            "stores": stores,
            "regions": directory["regions"],
        }

    def close(self) -> None:
        for install, _rd in self.installs.values():
            install.abandon()
        self.snapshots.close()
        self.transport.close()
        self.engine.close()
