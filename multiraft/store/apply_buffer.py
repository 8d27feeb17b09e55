"""ApplyBuffer: applied writes held in memory and written to LMDB in bulk.

Why: every applied put dirties a random 4 KiB page of the data B-tree, and
a commit fsyncs every page it dirtied. Written turn by turn, a store's
commit at 16 regions and 1,024 puts in flight took 11 ms for about 300
keys, in the path of every reply. The Raft log is already the state
machine's write-ahead log, so applied data need not be durable until its
entries leave the log: a turn's batch holds the entries and HardStates
(what replies and votes depend on), and the applied data, the session
tables and the applied indexes of normal entries wait here, to be written
into one turn's batch every `flush_interval` seconds or `flush_bytes` bytes,
where writes to the same page coalesce (etcd's backend does the same with
its batch transaction, committed every 100 ms).

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

from ..storage import kv
from ..storage.engine import Engine, WriteBatch
from .peer import Peer
from .session import write_changes

_ABSENT = object()


class ApplyBuffer:
    """The store's applied-but-unwritten data, sessions and applied indexes."""

    def __init__(self, engine: Engine, flush_interval: float, flush_bytes: int) -> None:
        self.engine = engine
        self.flush_interval = flush_interval
        self.flush_bytes = flush_bytes
        self._data: dict[bytes, bytes | None] = {}
        """User key -> value (None: deleted)."""
        self._bytes = 0
        """Bytes of keys and values put since the last flush (overwrites
        counted again: a bound on memory, not a measure)."""
        self._applied: dict[int, tuple[Peer, int]] = {}
        """Region id -> (its replica, the applied index to write)."""
        self._since = math.inf
        """When the oldest unwritten change was applied."""
        self._flushing: dict[bytes, bytes | None] = {}
        """Data flushed into a batch not committed yet: still read from here
        (a split flushes mid-turn, and a CAS after it must see the writes)."""

    # -- applying ------------------------------------------------------------

    def put(self, key: bytes, value: bytes | None) -> None:
        """An applied write (None: delete) of a user key."""
        self._data[key] = value
        self._bytes += len(key) + (len(value) if value is not None else 0)

    def applied_to(self, peer: Peer, index: int, now: float) -> None:
        """`peer` applied its entries up to `index` (data and sessions here)."""
        self._applied[peer.region.id] = (peer, index)
        if now < self._since:
            self._since = now

    def due(self, now: float) -> bool:
        return now - self._since >= self.flush_interval or self._bytes >= self.flush_bytes

    def flush(self, batch: WriteBatch) -> None:
        """Everything buffered, into `batch`: applied indexes, the sessions
        they go with, the data (sorted, so LMDB walks its pages in order)."""
        for peer, index in self._applied.values():
            peer.storage.set_applied(batch, index)
            write_changes(batch, peer.region.id, peer.sessions)
        data = self._data
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
        self._data = {}
        self._bytes = 0
        self._applied = {}
        self._since = math.inf

    def on_committed(self, flushed: dict[bytes, bytes | None]) -> None:
        """The batch holding `flushed` is durable: LMDB answers for it now."""
        if self._flushing is flushed:
            self._flushing = {}

    def flush_now(self) -> None:
        """Flush in a batch of its own, committed at once (between turns)."""
        if self._applied or self._data:
            batch = self.engine.batch()
            self.flush(batch)
            batch.commit()

    # -- reading ---------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        value = self._data.get(key, _ABSENT)
        if value is _ABSENT:
            value = self._flushing.get(key, _ABSENT)
            if value is _ABSENT:
                return kv.get(self.engine, key)
        return value  # type: ignore[return-value]

    def scan(self, start: bytes, end: bytes, limit: int | None) -> list[tuple[bytes, bytes]]:
        """Pairs with start <= key < end (end b"": no bound) in key order, at
        most `limit`: LMDB's with the buffer's laid over them. Costs a pass
        over the buffer when it is not empty (a few thousand keys under a
        heavy write load: `flush_interval`'s worth)."""
        data = {**self._flushing, **self._data} if self._flushing else self._data
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
