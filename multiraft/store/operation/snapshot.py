"""Snapshots, streamed out and in and installed over turns (the protocol is
`snapshot_transfer`'s, the install `storage.ingest`'s): a MsgSnap Raft
sends becomes a transfer; transfer frames feed the state machines and
their outcomes go back to Raft; a snapshot fully received is stepped into
its region's replica, whose Ready then installs it, a few transactions per
turn while the replica is frozen (no ticks, messages or Ready), so the
store's other regions keep going."""

from __future__ import annotations

import logging
import os
from collections.abc import Generator

import msgpack

from ...logs import Throttled
from ...protocol.region import Region
from ...raft import Message, Ready, SnapshotStatus
from ...storage import ingest
from ...storage.engine import WriteBatch
from ...storage.snapshot import SnapshotHeader
from ...transport import codec
from ..context import StoreContext
from ..peer import Peer
from ..session import load_sessions
from ..snapshot_transfer import Received, SnapshotReceiver, SnapshotSender, TransferConfig
from ..split_check import RegionSize
from . import peer_life, quiesce

log = logging.getLogger(__name__)
wire_log = Throttled(log)
"""For what other stores send: bad input must not flood the log."""

INSTALL_TXNS_PER_TURN = 2
"""LMDB transactions (each up to 4 MiB or 20,000 deletes) of a snapshot's
install per loop turn: the other regions wait at most that long."""


class Install:
    """Step 2 of one snapshot's ingest, a few transactions per loop turn."""

    def __init__(
        self, peer: Peer, rd: Ready, header: SnapshotHeader, steps: Generator[int, None, None]
    ) -> None:
        self.peer = peer
        self.ready = rd
        """The replica's Ready that carries the snapshot, held until its data is in."""
        self.header = header
        self._steps = steps
        self.written = 0

    def step(self, transactions: int) -> bool:
        """Run up to `transactions` more; returns whether the data is all in."""
        for _ in range(transactions):
            n = next(self._steps, None)
            if n is None:
                log.info(
                    "region %d: snapshot data installed (%d keys)",
                    self.peer.region.id,
                    self.written,
                )
                return True
            self.written = n
        return False

    def abandon(self) -> None:
        """The store stops: the marker stays, and the next start redoes it."""
        self._steps.close()


class SnapshotStreams:
    def __init__(self, ctx: StoreContext, config: TransferConfig) -> None:
        self.ctx = ctx
        self.sender = SnapshotSender(ctx.cluster_id, ctx.store_id, config)
        folder = ingest.staging_dir(ctx.engine)
        self.receiver = SnapshotReceiver(ctx.cluster_id, ctx.store_id, folder, config)
        self.installs: dict[int, Install] = {}
        """Regions whose snapshot's data is going in."""

    # -- sending -----------------------------------------------------------

    def send(self, peer: Peer, m: Message, to_store: int) -> None:
        """Stream the MsgSnap `m` (its data is the header) to `to_store`."""
        assert m.snapshot is not None
        ctx, meta = self.ctx, m.snapshot.metadata
        source = ctx.engine.snapshot_sources.claim(peer.region.id, meta.index, meta.term)
        epoch = (peer.region.epoch.version, peer.region.epoch.conf_ver)
        item = codec.RaftItem(peer.region.id, epoch, m, peer.region_wire())
        if source is None or not self.sender.start(item, to_store, source, ctx.now):
            log.info("region %d: snapshot to store %d postponed", peer.region.id, to_store)
            peer.raw_node.report_snapshot(m.to, SnapshotStatus.FAILURE)
        ctx.touch(peer)

    def pump(self) -> None:
        """Once per turn: send what the windows allow, end stalled transfers
        and report how they ended, close snapshot sources nobody claimed."""
        ctx = self.ctx
        self.sender.pump(ctx.now, ctx.outbox.frame)
        self.receiver.expire(ctx.now)
        for o in self.sender.take_outcomes():
            if o.status == SnapshotStatus.FINISH:
                ctx.metrics.count(ctx.metrics.snapshots, "sent")
            peer = ctx.peers.get(o.region_id)
            if peer is not None:
                peer.raw_node.report_snapshot(o.to_peer, o.status)
                ctx.touch(peer)
        ctx.engine.snapshot_sources.sweep()

    def unreachable(self, store_id: int) -> None:
        """Frames to `store_id` were refused: its transfers failed."""
        self.sender.fail_transfers_to(store_id)

    # -- receiving ---------------------------------------------------------

    def on_frame(self, msg: codec.SnapChunk | codec.SnapAck) -> None:
        ctx = self.ctx
        if msg.cluster_id != ctx.cluster_id:
            wire_log.warning(
                "dropped a snapshot frame from store %d of another cluster", msg.from_store
            )
            return
        if isinstance(msg, codec.SnapAck):
            self.sender.on_ack(msg, ctx.now)
            return
        received = self.receiver.on_chunk(msg, ctx.now, ctx.outbox.frame)
        if received is not None:
            ctx.metrics.count(ctx.metrics.snapshots, "received")
            self._deliver(received)

    def _deliver(self, r: Received) -> None:
        """Step the staged snapshot into its replica (created empty if this
        store has none); the file goes if Raft does not take it."""
        ctx, m = self.ctx, r.item.message
        if r.item.region_id in self.installs:
            log.info("region %d: a snapshot is going in already", r.item.region_id)
            ingest.remove_file(r.path)
            return
        peer = ctx.peers.get(r.item.region_id) or peer_life.create_from_message(ctx, r.item)
        if peer is None or m.to != peer.peer_id:
            log.warning("region %d: no replica for a received snapshot", r.item.region_id)
            ingest.remove_file(r.path)
            return
        quiesce.wake(ctx, peer)
        refused = peer.raw_node.step(m)
        if refused is not None:
            log.warning("region %d: bad snapshot message: %s", r.item.region_id, refused)
        if peer.raw_node.pending_snapshot() is not m.snapshot:
            ingest.remove_file(r.path)  # stale or not needed: Raft ignored it

    # -- installing --------------------------------------------------------

    def hold(self, readies: list[tuple[Peer, Ready]]) -> list[tuple[Peer, Ready]]:
        """The Readies without a snapshot; those with one wait while its data
        goes in (step 1 of the ingest now, step 2 over the next turns), the
        replica frozen meanwhile."""
        rest = []
        for peer, rd in readies:
            if rd.snapshot is None:
                rest.append((peer, rd))
                continue
            index = rd.snapshot.metadata.index
            log.info("region %d: installing a snapshot at index %d", peer.region.id, index)
            # Applied writes of the replica's old state must not land on
            # top of the snapshot's data.
            self.ctx.applied.flush_now()
            header = ingest.begin(self.ctx.engine, peer.region.id, rd.snapshot)
            steps = ingest.replace_data_steps(self.ctx.engine, header)
            self.installs[peer.region.id] = Install(peer, rd, header, steps)
            peer.frozen = True
        return rest

    def continue_installs(self) -> list[Install]:
        """A few more transactions of each install; those whose data is now
        all in (their Ready, step 3, goes into this turn's batch)."""
        done = []
        for region_id, install in list(self.installs.items()):
            if install.step(INSTALL_TXNS_PER_TURN):
                del self.installs[region_id]
                install.peer.frozen = False
                done.append(install)
        return done

    def finish(self, batch: WriteBatch, install: Install) -> None:
        """Step 3 of the ingest, in the turn's batch: the region's Raft state
        is the snapshot's, and the replica takes its descriptor."""
        peer, snap = install.peer, install.ready.snapshot
        assert snap is not None
        ingest.finish(batch, peer.storage, snap, install.header)
        peer.region = Region.from_wire(msgpack.unpackb(install.header.descriptor))
        self.ctx.ranges.remove(peer.region.id)
        self.ctx.ranges.update(peer.region)
        self.ctx.router.update(peer.region)

    def installed(self, install: Install) -> None:
        """The batch with the snapshot committed: the replica's sessions and
        size are the snapshot's, and its staging file is not needed."""
        peer, snap, staged = install.peer, install.ready.snapshot, install.header.staged
        assert snap is not None and staged is not None
        peer.sessions = load_sessions(self.ctx.engine, peer.region.id)
        peer.size = RegionSize()
        peer.forget_proposals_upto(snap.metadata.index)
        peer.applied = snap.metadata.index
        ingest.remove_file(os.path.join(ingest.staging_dir(self.ctx.engine), staged))

    def close(self) -> None:
        for install in self.installs.values():
            install.abandon()
        self.sender.close()
        self.receiver.close()
