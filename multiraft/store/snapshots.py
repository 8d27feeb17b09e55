"""The store's end of snapshot streaming (see `snapshot_transfer` for the
protocol and `storage.ingest` for the install): a MsgSnap Raft sends
becomes a transfer, transfer frames feed the state machines, their
outcomes go back to Raft, and a snapshot fully received is stepped into the
region's replica, whose Ready then installs it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..raft import SnapshotStatus
from ..raft.types import Message, Snapshot
from ..storage import ingest
from ..storage.snapshot import SnapshotHeader
from ..transport import codec
from .snapshot_transfer import Received, SnapshotReceiver, SnapshotSender, TransferConfig

if TYPE_CHECKING:
    from .peer import Peer
    from .store import Store

log = logging.getLogger(__name__)


class SnapshotStreams:
    def __init__(self, store: Store, config: TransferConfig) -> None:
        self.store = store
        self.sender = SnapshotSender(store.cluster_id, store.store_id, config)
        folder = ingest.staging_dir(store.engine)
        self.receiver = SnapshotReceiver(store.cluster_id, store.store_id, folder, config)

    # -- sending -----------------------------------------------------------

    def send(self, peer: Peer, m: Message, to_store: int, now: float) -> None:
        """Stream the MsgSnap `m` (its data is the header) to `to_store`."""
        assert m.snapshot is not None
        meta = m.snapshot.metadata
        source = self.store.engine.snapshot_sources.claim(peer.region.id, meta.index, meta.term)
        epoch = (peer.region.epoch.version, peer.region.epoch.conf_ver)
        item = codec.RaftItem(peer.region.id, epoch, m, peer.region_wire())
        if source is None or not self.sender.start(item, to_store, source, now):
            log.info("region %d: snapshot to store %d postponed", peer.region.id, to_store)
            peer.raw_node.report_snapshot(m.to, SnapshotStatus.FAILURE)

    def pump(self, now: float) -> None:
        """Once per turn: send what the windows allow, end stalled transfers
        and report how they ended, close snapshot sources nobody claimed."""
        self.sender.pump(now, self.store.transport.send_to_store)
        self.receiver.expire(now)
        for o in self.sender.take_outcomes():
            peer = self.store.peers.get(o.region_id)
            if peer is not None:
                peer.raw_node.report_snapshot(o.to_peer, o.status)
                self.store.touch(peer)
        self.store.engine.snapshot_sources.sweep()

    # -- receiving ---------------------------------------------------------

    def on_frame(self, msg: codec.SnapChunk | codec.SnapAck, now: float) -> None:
        if msg.cluster_id != self.store.cluster_id:
            log.warning("dropped a snapshot frame from store %d of another cluster", msg.from_store)
            return
        if isinstance(msg, codec.SnapAck):
            self.sender.on_ack(msg, now)
            return
        received = self.receiver.on_chunk(msg, now, self.store.transport.send_to_store)
        if received is not None:
            self._deliver(received)

    def _deliver(self, r: Received) -> None:
        """Step the staged snapshot into its replica (created empty if this
        store has none); the file goes if Raft does not take it."""
        store, m = self.store, r.item.message
        if r.item.region_id in store.installs:
            log.info("region %d: a snapshot is going in already", r.item.region_id)
            ingest.remove_file(r.path)
            return
        peer = store.peers.get(r.item.region_id) or store.maybe_create_peer(r.item)
        if peer is None or m.to != peer.peer_id:
            log.warning("region %d: no replica for a received snapshot", r.item.region_id)
            ingest.remove_file(r.path)
            return
        store.touch(peer)
        refused = peer.raw_node.step(m)
        if refused is not None:
            log.warning("region %d: bad snapshot message: %s", r.item.region_id, refused)
        if peer.raw_node.pending_snapshot() is not m.snapshot:
            ingest.remove_file(r.path)  # stale or not needed: Raft ignored it

    # -- installing --------------------------------------------------------

    def start_install(self, peer: Peer, snap: Snapshot) -> Install:
        """Step 1 of the ingest now; step 2 as the store calls `Install.step`;
        step 3 (`ingest.finish`) goes into a turn's batch."""
        log.info(
            "region %d: installing a snapshot at index %d", peer.region.id, snap.metadata.index
        )
        header = ingest.begin(self.store.engine, peer.region.id, snap)
        return Install(peer, header, ingest.replace_data_steps(self.store.engine, header))

    def installed(self, header: SnapshotHeader) -> None:
        """The turn's batch committed: the staging file is not needed any more."""
        assert header.staged is not None
        ingest.remove_file(os.path.join(ingest.staging_dir(self.store.engine), header.staged))

    def close(self) -> None:
        self.sender.close()
        self.receiver.close()


class Install:
    """Step 2 of one snapshot's ingest, a few transactions per loop turn."""

    def __init__(self, peer: Peer, header: SnapshotHeader, steps: Iterator[int]) -> None:
        self.peer = peer
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
