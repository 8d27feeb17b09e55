"""ApplyBuffer: applied writes held in memory and written to LMDB in bulk.

Why: every applied put dirties a random 4 KiB page of the data B-tree, and
a commit fsyncs every page it dirtied. Written turn by turn, a store's
commit at 16 regions and 1,024 puts in flight took 11 ms for about 300
keys, in the path of every reply. The Raft log is already the state
machine's write-ahead log, so applied data need not be durable until its
entries leave the log: a turn's batch holds the entries and HardStates
(what replies and votes depend on), and the applied data, the session
tables and the applied indexes of normal entries wait here, where writes
to the same page coalesce (etcd's backend does the same with its batch
transaction, committed every 100 ms).

Each region is its own state machine (its own keys, sessions and applied
index), so the buffer is kept and written region by region: a region's
writes go into a turn's batch once the oldest is `flush_interval` (1 s by
default) old, a few regions per turn (`FLUSH_KEYS_PER_TURN`), not all at
once: everything every 200 ms stalled a store's loop for 25-55 ms and
doubled the p99 of paced puts (94 ms against 41 ms with no flush at all).
A second's writes of a region dirty about as many pages as a fifth of a
second's, so the longer wait writes fewer pages per put: 18,000-25,000
puts/s against 15,000-19,000 at 0.2 s (16 regions, 1,024 in flight,
alternating runs); 2 s gained nothing more.

Reads see this buffer over LMDB. A crash loses the buffer, never a write:
the applied index on disk is the one written with the data, a restart
applies the log again from there, and log GC never passes it.

Whatever rewrites a region's state outside that path (a split, a
membership change, a snapshot going in, a replica deleted) flushes the
buffer first, into the same batch or one committed at once, so the state
on disk is always one the replicas went through.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..storage import kv
from ..storage.engine import Engine, WriteBatch
from .peer import Peer
from .session import write_changes

FLUSH_KEYS_PER_TURN = 512
"""Keys a turn writes of regions that are due (at least one region's)."""

_ABSENT = object()


@dataclass(slots=True)
class _Pending:
    """One region's applied-but-unwritten state."""

    peer: Peer
    data: dict[bytes, bytes | None] = field(default_factory=dict)
    """User key -> value (None: deleted)."""
    applied: int = 0
    """The applied index to write (0: none yet, in the middle of an apply)."""
    since: float = math.inf
    """When the oldest unwritten change was applied."""
    bytes: int = 0
    """Bytes of keys and values put (overwrites counted again: a bound on
    memory, not a measure)."""


class ApplyBuffer:
    """The store's applied-but-unwritten data, sessions and applied indexes."""

    def __init__(self, engine: Engine, flush_interval: float, flush_bytes: int) -> None:
        self.engine = engine
        self.flush_interval = flush_interval
        self.flush_bytes = flush_bytes
        self._regions: dict[int, _Pending] = {}
        """By region id, oldest first (a region goes to the end when written)."""
        self._bytes = 0
        """The regions' bytes, summed."""
        self._flushing: dict[bytes, bytes | None] = {}
        """Data written into a batch not committed yet: still read from here
        (a split flushes mid-turn, and a CAS after it must see the writes)."""

    # -- applying ------------------------------------------------------------

    @property
    def bytes_waiting(self) -> int:
        """Bytes of keys and values not in LMDB yet."""
        return self._bytes

    def region(self, peer: Peer) -> _Pending:
        """`peer`'s part of the buffer, for `put_into`: an entry's writes
        look it up once, not once each."""
        p = self._regions.get(peer.region.id)
        if p is None:
            p = self._regions[peer.region.id] = _Pending(peer)
        return p

    def put(self, peer: Peer, key: bytes, value: bytes | None) -> None:
        """`peer` applied a write (None: delete) of a user key."""
        self.put_into(self.region(peer), key, value)

    def put_into(self, p: _Pending, key: bytes, value: bytes | None) -> None:
        p.data[key] = value
        size = len(key) + (len(value) if value is not None else 0)
        p.bytes += size
        self._bytes += size

    def applied_to(self, peer: Peer, index: int, now: float) -> None:
        """`peer` applied its entries up to `index` (data and sessions here)."""
        p = self.region(peer)
        p.applied = index
        if now < p.since:
            p.since = now

    def due(self, now: float) -> bool:
        """Whether some region's writes are due (or the buffer is full)."""
        if self._bytes >= self.flush_bytes:
            return True
        oldest = next(iter(self._regions.values()), None)
        return oldest is not None and now - oldest.since >= self.flush_interval

    def flush_due(self, batch: WriteBatch, now: float) -> None:
        """The regions that are due, oldest first, about FLUSH_KEYS_PER_TURN
        keys of them; all of them while the buffer is over `flush_bytes`."""
        budget, left, due = FLUSH_KEYS_PER_TURN, self._bytes, []
        # Chosen in one pass, then written: taking the first item again
        # after each removal would rescan the removed slots every time.
        for region_id, p in self._regions.items():
            full = left >= self.flush_bytes
            if budget <= 0 or (not full and now - p.since < self.flush_interval):
                break
            due.append(region_id)
            budget -= len(p.data) if not full else 0
            left -= p.bytes
        for region_id in due:
            self._write(batch, region_id)

    def flush(self, batch: WriteBatch) -> None:
        """Everything buffered, into `batch`."""
        for region_id in list(self._regions):
            self._write(batch, region_id)

    def _write(self, batch: WriteBatch, region_id: int) -> None:
        """One region's applied index, the sessions that go with it, and its
        data (sorted, so LMDB walks its pages in order), into `batch`."""
        p = self._regions.pop(region_id)
        self._bytes -= p.bytes
        if p.applied:
            p.peer.storage.set_applied(batch, p.applied)
        write_changes(batch, region_id, p.peer.sessions)
        data = p.data
        puts = []
        for key in sorted(data):
            value = data[key]
            if value is None:
                kv.delete(batch, key)
            else:
                puts.append((key, value))
        kv.put_many(batch, puts)
        flushing = batch.owners.get(self)
        if flushing is None:
            flushing = batch.owners[self] = {}
        flushing.update(data)
        self._flushing = flushing

    def on_committed(self, flushed: dict[bytes, bytes | None]) -> None:
        """The batch holding `flushed` is durable: LMDB answers for it now."""
        if self._flushing is flushed:
            self._flushing = {}

    def flush_now(self, region_id: int | None = None) -> None:
        """Write every region's writes (or one region's) in a batch of its
        own, committed at once (between turns)."""
        if region_id is not None and region_id not in self._regions:
            return
        if self._regions:
            batch = self.engine.batch()
            if region_id is None:
                self.flush(batch)
            else:
                self._write(batch, region_id)
            batch.commit()

    # -- reading ---------------------------------------------------------------

    def get(self, region_id: int, key: bytes) -> bytes | None:
        """`key`'s value as applied by region `region_id`'s replica here."""
        p = self._regions.get(region_id)
        value = _ABSENT if p is None else p.data.get(key, _ABSENT)
        if value is _ABSENT:
            value = self._flushing.get(key, _ABSENT)
            if value is _ABSENT:
                return kv.get(self.engine, key)
        return value  # type: ignore[return-value]

    def scan(
        self, region_id: int, start: bytes, end: bytes, limit: int | None
    ) -> list[tuple[bytes, bytes]]:
        """Pairs with start <= key < end (end b"": no bound) in key order, at
        most `limit`, as applied by region `region_id`'s replica here (the
        range must be inside the region): LMDB's with the buffer's laid over
        them. Costs a pass over the region's buffered keys."""
        p = self._regions.get(region_id)
        data = p.data if p is not None else {}
        if self._flushing:
            data = {**self._flushing, **data}
        over = sorted((k, v) for k, v in data.items() if k >= start and (not end or k < end))
        if not over:
            return kv.scan(self.engine, start, end, limit)
        out: list[tuple[bytes, bytes]] = []
        if limit is not None and limit <= 0:
            return out
        with self.engine.read() as txn:
            for k, v in _merge(kv.iterate(txn, start, end), over):
                out.append((k, v))
                if len(out) == limit:
                    break
        return out


def _merge(
    stored: Iterator[tuple[bytes, bytes]], over: list[tuple[bytes, bytes | None]]
) -> Iterator[tuple[bytes, bytes]]:
    """Two key-ordered streams as one; `over` wins on equal keys, and its
    None values hide the key."""
    i, n = 0, len(over)
    for k, v in stored:
        while i < n and over[i][0] < k:
            ok, ov = over[i]
            if ov is not None:
                yield ok, ov
            i += 1
        if i < n and over[i][0] == k:
            ov = over[i][1]
            if ov is not None:
                yield k, ov
            i += 1
        else:
            yield k, v
    for ok, ov in over[i:]:
        if ov is not None:
            yield ok, ov
