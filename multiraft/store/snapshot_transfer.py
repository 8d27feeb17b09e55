"""Streaming a snapshot from one store to another: the sender's and the
receiver's state machines.

Sans-I/O: the time comes in as an argument and frames leave through a
`send(store_id, frame)` callable, so both run in unit tests; a store whose
frames were refused is reported with `fail_transfers_to`.

The sender reads chunks of at most `chunk_bytes` of keys and values (plus
one pair) from the snapshot's source and keeps at most `window` of them
unacknowledged, so a transfer holds at most window x chunk bytes in memory
(in ZeroMQ's queues). Chunk 0 carries the MsgSnap with the snapshot's
header; the last one says `done`. A transfer with no ack for `timeout`
seconds, a refused chunk or an undeliverable frame ends in FAILURE (Raft
tries again later); the ack of the last chunk ends it in FINISH.

The receiver appends each chunk, checked (in order, keys ascending and in
the region's range), to a staging file, acks it, and once the last one is
durable hands the MsgSnap over, its header now naming the file. Anything
off (a chunk out of order, a duplicate, an unknown transfer) ends the
transfer with a refusal; it is logged, never raised.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..logs import Throttled
from ..raft import SnapshotStatus
from ..raft.types import Snapshot
from ..storage.errors import StorageError
from ..storage.ingest import StagingWriter
from ..storage.snapshot import SnapshotHeader
from ..transport import codec

log = logging.getLogger(__name__)
wire_log = Throttled(log)
"""For what other stores send: bad input must not flood the log."""

Send = Callable[[int, bytes], None]
"""send(store_id, frame): hand a frame to the transport."""


@dataclass(slots=True)
class TransferConfig:
    chunk_bytes: int = 1 << 20
    """Keys and values per chunk (a chunk ends after the pair reaching it)."""
    window: int = 4
    """Chunks a transfer may have sent and not yet seen acknowledged."""
    timeout: float = 10.0
    """Seconds without progress after which a transfer is given up."""
    max_sends: int = 4
    """Outgoing transfers at once; past it, Raft is told FAILURE at once."""
    max_receives: int = 8
    """Incoming transfers at once; past it, a new one is refused."""


class ChunkSource(Protocol):
    def next_chunk(self, max_bytes: int) -> tuple[list[bytes], bool]: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class Outcome:
    """How a transfer ended, for `RawNode.report_snapshot(to_peer, status)`."""

    region_id: int
    to_peer: int
    status: SnapshotStatus


@dataclass(slots=True)
class _Outgoing:
    id: int
    to_store: int
    item: codec.RaftItem
    source: ChunkSource
    deadline: float
    next_seq: int = 0
    acked: int = -1
    last_seq: int | None = None
    """The seq of the chunk marked done, once sent."""


class SnapshotSender:
    """The outgoing transfers of one store."""

    def __init__(
        self, cluster_id: int, store_id: int, config: TransferConfig, first_id: int | None = None
    ) -> None:
        self.cluster_id = cluster_id
        self.store_id = store_id
        self.config = config
        # Random start: a restarted store's ids do not meet its old ones.
        self._next_id = first_id if first_id is not None else secrets.randbits(48) + 1
        self._out: dict[int, _Outgoing] = {}
        self._outcomes: list[Outcome] = []

    def __len__(self) -> int:
        return len(self._out)

    def start(self, item: codec.RaftItem, to_store: int, source: ChunkSource, now: float) -> bool:
        """Stream the MsgSnap in `item` with the data of `source` (which the
        transfer now owns); False, source closed, if too many run already."""
        if len(self._out) >= self.config.max_sends:
            source.close()
            return False
        t = _Outgoing(self._next_id, to_store, item, source, now + self.config.timeout)
        self._next_id += 1
        self._out[t.id] = t
        return True

    def on_ack(self, ack: codec.SnapAck, now: float) -> None:
        t = self._out.get(ack.transfer_id)
        if t is None or ack.from_store != t.to_store:
            wire_log.error(
                "dropped a snapshot ack from store %d for unknown transfer %x",
                ack.from_store,
                ack.transfer_id,
            )
            return
        if not ack.ok:
            log.warning("snapshot transfer %x refused by store %d", t.id, t.to_store)
            self._end(t, SnapshotStatus.FAILURE)
            return
        if ack.seq != t.acked + 1 or ack.seq >= t.next_seq:
            wire_log.error("transfer %x: dropped ack %d (expected %d)", t.id, ack.seq, t.acked + 1)
            return
        t.acked = ack.seq
        t.deadline = now + self.config.timeout
        if ack.seq == t.last_seq:
            self._end(t, SnapshotStatus.FINISH)

    def pump(self, now: float, send: Send) -> int:
        """Send what the windows allow and end stalled transfers; returns
        the number of chunks sent."""
        sent = 0
        for t in list(self._out.values()):
            if now >= t.deadline:
                log.warning("snapshot transfer %x to store %d timed out", t.id, t.to_store)
                self._end(t, SnapshotStatus.FAILURE)
                continue
            while t.last_seq is None and t.next_seq - t.acked <= self.config.window:
                try:
                    self._send_chunk(t, send)
                except StorageError as e:
                    log.warning("snapshot transfer %x: %s", t.id, e)
                    self._end(t, SnapshotStatus.FAILURE)
                    break
                sent += 1
        return sent

    def _send_chunk(self, t: _Outgoing, send: Send) -> None:
        pairs, done = t.source.next_chunk(self.config.chunk_bytes)
        if done:
            t.source.close()  # the read transaction is not needed any more
            t.last_seq = t.next_seq
        chunk = codec.SnapChunk(
            self.cluster_id,
            self.store_id,
            t.item.region_id,
            t.id,
            t.next_seq,
            pairs,
            done,
            t.item if t.next_seq == 0 else None,
        )
        t.next_seq += 1
        send(t.to_store, codec.encode_snap_chunk(chunk))

    def fail_transfers_to(self, store_id: int) -> None:
        """The transport refused frames for `store_id`: its transfers end."""
        for t in [t for t in self._out.values() if t.to_store == store_id]:
            log.warning("snapshot transfer %x: store %d unreachable", t.id, store_id)
            self._end(t, SnapshotStatus.FAILURE)

    def take_outcomes(self) -> list[Outcome]:
        out, self._outcomes = self._outcomes, []
        return out

    def _end(self, t: _Outgoing, status: SnapshotStatus) -> None:
        t.source.close()
        del self._out[t.id]
        self._outcomes.append(Outcome(t.item.region_id, t.item.message.to, status))

    def close(self) -> None:
        """Drop every transfer (the store stops): sources closed, no outcomes."""
        for t in self._out.values():
            t.source.close()
        self._out.clear()


@dataclass(slots=True)
class Received:
    """A snapshot fully staged: step `item.message` into the region's replica;
    its header names `path`, which the ingest removes."""

    item: codec.RaftItem
    path: str


@dataclass(slots=True)
class _Incoming:
    from_store: int
    id: int
    item: codec.RaftItem
    header: SnapshotHeader
    writer: StagingWriter
    deadline: float
    next_seq: int = 1
    last_key: bytes | None = None


class SnapshotReceiver:
    """The incoming transfers of one store, staged under `folder`."""

    def __init__(self, cluster_id: int, store_id: int, folder: str, config: TransferConfig) -> None:
        self.cluster_id = cluster_id
        self.store_id = store_id
        self.folder = folder
        self.config = config
        self._in: dict[tuple[int, int], _Incoming] = {}

    def __len__(self) -> int:
        return len(self._in)

    def on_chunk(self, c: codec.SnapChunk, now: float, send: Send) -> Received | None:
        """Take one chunk; the staged snapshot once its last chunk is durable."""
        key = (c.from_store, c.transfer_id)
        t = self._in.get(key)
        if c.seq == 0 and t is None:
            t = self._open(c, now)
        elif t is None or c.seq != t.next_seq:
            expected = "none" if t is None else str(t.next_seq)
            wire_log.error(
                "snapshot transfer %x from store %d: chunk %d out of order (expected %s)",
                c.transfer_id,
                c.from_store,
                c.seq,
                expected,
            )
            t = None
        else:
            t.next_seq += 1
        if t is None or not self._write(t, c):
            self._refuse(c, send)
            return None
        t.deadline = now + self.config.timeout
        if not c.done:
            self._ack(c, True, send)
            return None
        t.writer.finish()
        del self._in[key]
        self._ack(c, True, send)
        staged = dataclasses.replace(t.header, staged=os.path.basename(t.writer.path))
        m = t.item.message
        assert m.snapshot is not None
        snap = Snapshot(staged.encode(), m.snapshot.metadata)
        item = dataclasses.replace(t.item, message=dataclasses.replace(m, snapshot=snap))
        return Received(item, t.writer.path)

    def _open(self, c: codec.SnapChunk, now: float) -> _Incoming | None:
        assert c.item is not None and c.item.message.snapshot is not None
        try:
            header = SnapshotHeader.decode(c.item.message.snapshot.data)
        except ValueError as e:
            wire_log.error("snapshot transfer %x from store %d: %s", c.transfer_id, c.from_store, e)
            return None
        for old in [t for t in self._in.values() if t.from_store == c.from_store]:
            if old.item.region_id == c.region_id:
                log.info("snapshot transfer %x superseded by %x", old.id, c.transfer_id)
                self._drop(old)
        if len(self._in) >= self.config.max_receives:
            wire_log.warning("refused snapshot transfer %x: too many at once", c.transfer_id)
            return None
        name = f"{c.region_id}-{c.from_store}-{c.transfer_id:x}.snap"
        writer = StagingWriter(os.path.join(self.folder, name))
        t = _Incoming(c.from_store, c.transfer_id, c.item, header, writer, now)
        self._in[(c.from_store, c.transfer_id)] = t
        return t

    def _write(self, t: _Incoming, c: codec.SnapChunk) -> bool:
        """Append the chunk's pairs if they are in order and in the region."""
        last, header = t.last_key, t.header
        for k in c.pairs[0::2]:
            if (last is not None and k <= last) or not header.contains(k):
                log.error(
                    "snapshot transfer %x: key %r out of order or outside the region",
                    t.id,
                    k[:64],
                )
                self._drop(t)
                return False
            last = k
        if c.pairs:
            t.writer.write(c.pairs)
            t.last_key = last
        return True

    def _refuse(self, c: codec.SnapChunk, send: Send) -> None:
        t = self._in.get((c.from_store, c.transfer_id))
        if t is not None:
            self._drop(t)
        self._ack(c, False, send)

    def _ack(self, c: codec.SnapChunk, ok: bool, send: Send) -> None:
        ack = codec.SnapAck(self.cluster_id, self.store_id, c.transfer_id, c.seq, ok)
        send(c.from_store, codec.encode_snap_ack(ack))

    def _drop(self, t: _Incoming) -> None:
        t.writer.abort()
        self._in.pop((t.from_store, t.id), None)

    def expire(self, now: float) -> int:
        """Give up transfers with no chunk for `timeout` seconds (the sender
        died or gave up); returns how many."""
        stale = [t for t in self._in.values() if now >= t.deadline]
        for t in stale:
            log.warning("snapshot transfer %x from store %d abandoned", t.id, t.from_store)
            self._drop(t)
        return len(stale)

    def close(self) -> None:
        """Drop every partial transfer and its file (the store stops)."""
        for t in list(self._in.values()):
            self._drop(t)
