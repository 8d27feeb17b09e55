"""Store: one process's replicas, one LMDB environment, many regions; the
loop's turn, sans I/O. The shell (`shell.StoreServer`) owns the ZeroMQ
sockets and the clock; a turn takes what arrived and the time, and gives
back what to send and the batch to commit:

    out = store.turn(inbox, now)      # frames received since the last turn
    send(out.early); reply(out.replies)
    out.batch.commit()                # one fsync for every region
    send(out.late)
    done = store.advance()            # after the commit: reads, new regions
    reply(done.replies); send(done.frames)

A turn: (1) decode and dispatch every frame: Raft messages are stepped into
their replicas, client requests checked and queued; (2) tick every region
if a tick is due (logical clock, `tick_interval` seconds), gossip and
schedule once a second; (3) propose each region's queued writes as one
entry (unless its leader's log has an entry not yet committed: then they
wait for it and go as one bigger entry, a group commit), and one ReadIndex
for its queued reads; (4) take the Ready of every
region that got input: a leader's appends may leave at once, everything
else waits for the batch holding all their entries, HardStates and applied
data. `advance` then advances every Ready and serves the reads whose read
index is applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import PermissionDenied
from ..logs import Throttled
from ..protocol.wire import KIND_REQUEST, KIND_REQUESTS, Request, RequestBatch
from ..raft import Message, MessageType, Ready
from ..security.trust import Principal
from ..storage import ingest
from ..storage.engine import WriteBatch
from ..transport import codec
from . import gossip
from .config import StoreConfig
from .context import StoreContext
from .meta import load_trust, open_data_dir
from .operation import peer_life, quiesce, read, write
from .operation import ready as readies
from .operation.batch import TurnBatch
from .operation.snapshot import Install, SnapshotStreams
from .outbox import ClientFrame, Handle, Outbox, StoreFrame
from .peer import Peer
from .replicas import ReplicaScheduler
from .scheduler import Scheduler
from .service import Service
from .stores import StoreBook

log = logging.getLogger(__name__)
wire_log = Throttled(log)

_CLIENT_KINDS = (bytes([KIND_REQUEST]), bytes([KIND_REQUESTS]))
"""The frame kinds (second byte) a client key may send."""
BALANCE_TICKS = 20
"""Ticks between two leader-balance rounds (2 s at the default tick)."""
REPAIR_ROUNDS = 10
"""Gossip rounds between two replica checks of every region led here (the
others check the awake ones only)."""

Inbox = Iterable[tuple[bytes, bytes, Principal]]
"""(sender's ZeroMQ identity, frame, sender) received since the last turn."""
Join = Callable[[], tuple[int, dict[int, str]]]
"""Asks a member to join its cluster: (cluster id, store list)."""


@dataclass
class TurnOutput:
    """What a turn leaves to the shell, in this order: send `early` and
    `replies`, commit `batch`, send `late`, then call `Store.advance`."""

    early: list[StoreFrame]
    replies: list[ClientFrame]
    batch: WriteBatch
    late: list[StoreFrame]


@dataclass
class _Persisting:
    """A turn's Readies waiting for their batch to be committed."""

    readies: list[tuple[Peer, Ready]] = field(default_factory=list)
    installed: list[Install] = field(default_factory=list)
    batch: TurnBatch | None = None


@dataclass
class AdvanceOutput:
    replies: list[ClientFrame]
    frames: list[StoreFrame]
    busy: bool
    """Some region has more to do at once: do not wait for input."""


class Store:
    def __init__(self, config: StoreConfig, now: float, join: Join | None = None) -> None:
        engine, meta = open_data_dir(
            config.data_dir,
            config.store_id,
            config.initial_cluster,
            config.replicas,
            config.sync,
            join,
        )
        try:
            ingest.recover(engine)  # before any replica reads its region
        except Exception:
            engine.close()
            raise
        live_window = 3 * config.raft.election_tick * config.tick_interval
        book = StoreBook(meta, engine, live_window, config.max_store_down_time, now)
        self.ctx = ctx = StoreContext(
            config, engine, meta, book, Outbox(meta.cluster_id, meta.store_id)
        )
        ctx.now = now
        if config.security is not None:
            ctx.trust = load_trust(engine, meta.store_id, config.security.trusted)
        peer_life.load_all(ctx)
        self.snapshots = SnapshotStreams(ctx, config.snapshot)
        self.replicas = ReplicaScheduler(ctx)
        self.scheduler = Scheduler(ctx, self.replicas)
        self.service = Service(ctx, self.replicas)
        self.watch = quiesce.StoreWatch(ctx)
        self.next_tick = now + config.tick_interval
        """When the next tick is due (the shell may sleep until then)."""
        self._ticks = 0
        self._persisting = _Persisting()

    @property
    def peers(self) -> dict[int, Peer]:
        return self.ctx.peers

    # -- the turn -------------------------------------------------------------

    def turn(self, inbox: Inbox, now: float, undelivered: Iterable[int] = ()) -> TurnOutput:
        """Take in `inbox` at time `now` and do the turn's work up to its
        batch. `undelivered`: stores the shell could not hand frames to
        since the last turn (their Raft messages were lost)."""
        ctx = self.ctx
        ctx.now = now
        self._report_undelivered(undelivered)
        for identity, frame, sender in inbox:
            self._on_frame(identity, frame, sender)
        if now >= self.next_tick:
            self._tick()
            self.next_tick = max(self.next_tick + self._skip_idle_tick(), now)
        active = [ctx.peers[r] for r in ctx.active if r in ctx.peers]
        ctx.active = set()
        work = [p for p in active if not p.frozen]
        for peer in work:
            if write.due(peer):
                write.propose(ctx, peer)
                ctx.metrics.count(ctx.metrics.proposals, "write")
            if peer.reads:
                read.propose(ctx, peer)
        rds = [(p, p.raw_node.ready()) for p in work if p.raw_node.has_ready()]
        installed = self.snapshots.continue_installs()
        rds = self.snapshots.hold(rds) + [(i.peer, i.ready) for i in installed]
        peer_life.clear_some(ctx)
        tb = readies.persist(ctx, self.snapshots, rds, installed) if rds else None
        if ctx.applied.due(now):
            tb = tb or TurnBatch.open(ctx.engine, ctx.applied)
            ctx.applied.flush_due(tb.batch, now)
        self._persisting = _Persisting(rds, installed, tb)
        return TurnOutput(
            early=ctx.outbox.take_raft(early=True),
            replies=ctx.outbox.take_replies(now),
            batch=tb.batch if tb is not None else ctx.engine.batch(),
            late=ctx.outbox.take_raft(early=False),
        )

    def advance(self) -> AdvanceOutput:
        """The last turn's batch is committed (and its late frames sent):
        finish the turn."""
        ctx, done = self.ctx, self._persisting
        self._persisting = _Persisting()
        if done.batch is not None:
            readies.advance(ctx, self.snapshots, done.readies, done.installed, done.batch)
        self.snapshots.pump()
        for peer, _ in done.readies:
            if peer.raw_node.has_ready():
                ctx.touch(peer)
        busy = bool(ctx.active or self.snapshots.installs or ctx.clears)
        return AdvanceOutput(ctx.outbox.take_replies(ctx.now), ctx.outbox.take_frames(), busy)

    def _tick(self) -> None:
        """Tick the awake regions only: a quiet one costs nothing."""
        ctx = self.ctx
        lost = self.watch.lost
        for region_id in list(ctx.awake):
            peer = ctx.peers[region_id]
            if not peer.frozen:
                quiesce.tick(ctx, peer, lost)
        ctx.active.update(ctx.awake)
        self._ticks += 1
        gossip_due = self._ticks % gossip.GOSSIP_TICKS == 0
        self.watch.tick(ping=self._ticks % quiesce.PING_TICKS == 0 and not gossip_due)
        if gossip_due:
            rounds = self._ticks // gossip.GOSSIP_TICKS
            full = rounds % gossip.FULL_ROUNDS == 1 or self.watch.take_came_back()
            gossip.send_gossip(ctx, full)
            ctx.metrics.view = gossip.metrics_view(ctx)
            self.scheduler.check_splits()
            everyone = rounds % REPAIR_ROUNDS == 0
            self.replicas.check_replicas(self._ticks % BALANCE_TICKS == 0, everyone)
        if self._ticks % BALANCE_TICKS == 0:
            self.scheduler.balance_leaders()

    def _skip_idle_tick(self) -> float:
        """Seconds to the next tick. While every region is quiet a tick past
        a ping does nothing at all: skip it, so an idle store wakes half as
        often (a request or a message that wakes a region is taken in at
        once; its first tick comes at most a tick late)."""
        interval = self.ctx.config.tick_interval
        if self.ctx.awake or self._ticks % quiesce.PING_TICKS:
            return interval
        self._ticks += quiesce.PING_TICKS - 1
        return interval * quiesce.PING_TICKS

    def _report_undelivered(self, undelivered: Iterable[int]) -> None:
        """Raft hears of the messages the shell could not hand over."""
        sent = self.ctx.outbox.forget_sent()
        for store_id in undelivered:
            self.snapshots.unreachable(store_id)
            for region_id, to_peer in sent.get(store_id, []):
                peer = self.ctx.peers.get(region_id)
                if peer is not None:
                    peer.raw_node.report_unreachable(to_peer)
                    self.ctx.touch(peer)

    # -- input ----------------------------------------------------------------

    def _on_frame(self, identity: bytes, frame: bytes, sender: Principal) -> None:
        """Decode and dispatch one frame. Only a store's key may send store
        frames, and only as the store it is; a client's requests are
        checked against its role one by one (`Service.handle`)."""
        if not sender.is_store and frame[1:2] not in _CLIENT_KINDS:
            why = f"role {sender.role} may not send store frames (key {sender.name})"
            wire_log(logging.WARNING, sender.name, "refused a store frame: %s", why)
            self.ctx.outbox.reply(Handle(identity, 0), PermissionDenied(why))
            return
        try:
            msg = codec.decode(frame)
        except codec.CodecError as e:
            n = len(frame)
            wire_log(logging.WARNING, "malformed", "dropped a malformed frame (%d bytes): %s", n, e)
            return
        if isinstance(msg, RequestBatch):
            for req in msg.requests:
                handle = Handle(identity, req.request_id, True, req.op, self.ctx.now)
                self.service.handle(req, handle, sender)
        elif isinstance(msg, Request):
            handle = Handle(identity, msg.request_id, False, msg.op, self.ctx.now)
            self.service.handle(msg, handle, sender)
        elif not isinstance(msg, codec.PeerBatch | codec.SnapChunk | codec.SnapAck):
            wire_log(logging.WARNING, "unexpected", "dropped a %s frame", type(msg).__name__)
        elif sender.store_id is not None and msg.from_store != sender.store_id:
            wire_log(
                logging.WARNING,
                sender.name,
                "dropped a frame from store %d's key claiming to be store %d",
                sender.store_id,
                msg.from_store,
            )
        elif isinstance(msg, codec.PeerBatch):
            self._on_peer_batch(msg)
        else:
            self.snapshots.on_frame(msg)

    def _on_peer_batch(self, batch: codec.PeerBatch) -> None:
        ctx = self.ctx
        if batch.cluster_id != ctx.cluster_id:
            wire_log.warning(
                "dropped Raft traffic from store %d of another cluster", batch.from_store
            )
            return
        ctx.book.heard_from(batch.from_store, ctx.now)
        if batch.extras and batch.from_store in ctx.book.addrs:
            # Only members gossip: a store that never joined cannot add
            # stores, regions or keys to this one's view.
            gossip.learn(ctx, batch.from_store, batch.extras)
        for item in batch.items:
            self._step(batch.from_store, item)
        beats = batch.beats
        for i in range(0, len(beats), codec.BEAT_FIELDS):
            self._step_beat(batch.from_store, *beats[i : i + codec.BEAT_FIELDS])

    def _step(self, from_store: int, item: codec.RaftItem) -> None:
        """Step one Raft message into its region's replica (created empty if
        this store has none and may have one)."""
        ctx, m = self.ctx, item.message
        if m.type == MessageType.PROP:
            # Stores never forward proposals: a PROP on the wire is bogus.
            log.warning("dropped a proposal sent by store %d", from_store)
            return
        if m.type == MessageType.SNAP:
            # Snapshots arrive as SNAP_CHUNK streams only (see `snapshot`).
            log.warning("dropped a MsgSnap in a Raft batch from store %d", from_store)
            return
        peer = ctx.peers.get(item.region_id) or peer_life.create_from_message(ctx, item)
        if peer is None or m.to != peer.peer_id:
            log.debug("no peer for region %d message to %d", item.region_id, m.to)
            return
        if peer.frozen:
            return  # its snapshot is going in; Raft resends
        if not _from_member(peer, from_store, m.frm, item.epoch):
            wire_log.warning(
                "region %d: dropped a message from store %d, no member", peer.region.id, from_store
            )
            return
        quiesce.wake(ctx, peer)
        if m.type in (MessageType.PRE_VOTE, MessageType.VOTE):
            quiesce.on_vote_request(ctx, peer, from_store)
        peer.heard(m.frm, from_store)
        ctx.metrics.count(ctx.metrics.raft_received, m.type)
        refused = peer.raw_node.step(m)
        if refused is not None:
            log.debug(
                "region %d: message from store %d not taken: %s",
                item.region_id,
                from_store,
                refused,
            )

    def _step_beat(
        self, from_store: int, region_id: int, frm: int, to: int, term: int, commit: int, flags: int
    ) -> None:
        """Fan a coalesced heartbeat (or response) out into its region's replica."""
        peer = self.ctx.peers.get(region_id)
        if peer is None or to != peer.peer_id or peer.frozen:
            return  # Raft's usual recovery (appends, probes) covers a lost heartbeat
        self.ctx.touch(peer)
        peer.heard(frm, from_store)
        kind = MessageType.HEARTBEAT_RESP if flags & codec.RESPONSE else MessageType.HEARTBEAT
        self.ctx.metrics.count(self.ctx.metrics.raft_received, kind)
        if flags & codec.RESPONSE:
            peer.raw_node.step(Message(MessageType.HEARTBEAT_RESP, to, frm, term))
            return
        peer.raw_node.step(Message(MessageType.HEARTBEAT, to, frm, term, commit=commit))
        quiesce.on_heartbeat(self.ctx, peer, frm, term, flags)

    def flush_applied(self) -> None:
        """Write what is applied but only in memory (between turns): a
        clean stop then leaves nothing to apply again at the next start."""
        self.ctx.applied.flush_now()

    def close(self) -> None:
        """Close the data dir; what `flush_applied` did not write is applied
        again from the log at the next start, as after a crash."""
        self.snapshots.close()
        self.ctx.engine.close()


def _from_member(peer: Peer, from_store: int, frm: int, epoch: tuple[int, int]) -> bool:
    """Whether peer `frm` on `from_store` belongs to the region, as far as
    this replica or the sender (with a newer membership) knows: a store
    that was never, or is no longer, a member must not sway the region
    (TiKV drops such messages as stale too)."""
    me = peer.region.peer_on(from_store)
    return (me is not None and me.peer_id == frm) or epoch[1] > peer.region.epoch.conf_ver
