"""`PeerStorage`: one region's Raft `Storage`, read from LMDB through an
in-memory cache, and the writes the store makes to it.

Reads answer from committed state only: writes go into a `WriteBatch`
together with a per-batch pending copy of this region's state, and the
cache (last index/term, hard state, apply and region state, a tail of
recent entries) adopts that copy only once the batch has committed. So
nothing a reader sees can differ from what is on disk, and a batch that
fails or is dropped leaves no trace in memory either.

The semantics mirror `MemoryStorage`: the apply state's truncated
index/term is the dummy entry at first_index() - 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from multiraft.raft.errors import Compacted, SnapshotOutOfDate, Unavailable
from multiraft.raft.types import ConfState, Entry, HardState, Snapshot, limit_size

from . import keys
from .engine import Engine, WriteBatch
from .errors import StorageError
from .snapshot import open_snapshot
from .states import (
    ENTRY_HEADER,
    HARD_STATE,
    ApplyState,
    RegionState,
    decode_entry,
    decode_hard_state,
    entry_term,
)

DEFAULT_CACHE_ENTRIES = 256


@dataclass(slots=True)
class _Pending:
    """This region's state as the batch in progress will leave it.

    Invariant: `tail` holds the entries [tail_start, last_index]; stored
    entries below tail_start are untouched by the batch (unless compacted).
    One object per PeerStorage, reset for each batch: allocating one per
    region and batch costs more than the rest of an append.
    """

    hard_state: HardState = field(default_factory=HardState)
    apply: ApplyState = field(default_factory=ApplyState)
    region: RegionState = field(default_factory=RegionState)
    last_index: int = 0
    last_term: int = 0
    tail_start: int = 0
    tail: list[Entry] = field(default_factory=list)


class PeerStorage:
    """Raft storage of region `region_id` over `engine`, cached.

    Use one instance per region and process: its cache assumes it is the
    only writer of the region's keys. Its writes go into one batch at a
    time: writing into a new batch before the last one committed abandons
    that one (committing it then raises).
    """

    def __init__(
        self, engine: Engine, region_id: int, *, cache_entries: int = DEFAULT_CACHE_ENTRIES
    ) -> None:
        self.engine = engine
        self.region_id = region_id
        self._cache_entries = cache_entries
        self._log_prefix = keys.raft_log_prefix(region_id)
        self._hs_key = keys.hard_state_key(region_id)
        self._apply_key = keys.apply_state_key(region_id)
        self._region_key = keys.region_state_key(region_id)
        self._batch: WriteBatch | None = None
        self._p = _Pending()
        self._load()

    # -- restart -----------------------------------------------------------

    def _load(self) -> None:
        """(Re)read everything from disk, warming the entry cache."""
        with self.engine.read() as txn:
            hs = txn.get(self._hs_key)
            apply = txn.get(self._apply_key)
            region = txn.get(self._region_key)
            tail = self._read_tail(txn, max(self._cache_entries, 1))
        self.hard_state = decode_hard_state(hs) if hs else HardState()
        self.apply_state = ApplyState.decode(apply) if apply else ApplyState()
        self.region = RegionState.decode(region) if region else RegionState()
        trunc = self.apply_state.truncated_index
        tail = [e for e in tail if e.index > trunc]
        self._last_index = tail[-1].index if tail else trunc
        self._last_term = tail[-1].term if tail else self.apply_state.truncated_term
        self._cache = tail[len(tail) - self._cache_entries :] if self._cache_entries else []

    def _read_tail(self, txn: object, n: int) -> list[Entry]:
        """The last (at most) n stored entries of the log, in index order."""
        cur = txn.cursor()  # type: ignore[attr-defined]
        ok = cur.prev() if cur.set_range(self._hs_key) else cur.last()
        out: list[Entry] = []
        prefix = self._log_prefix
        while ok and len(out) < n and cur.key().startswith(prefix):
            out.append(decode_entry(keys.raft_log_index(cur.key()), cur.value()))
            ok = cur.prev()
        out.reverse()
        return out

    # -- Storage protocol --------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.hard_state, self.region.conf_state

    def first_index(self) -> int:
        return self.apply_state.truncated_index + 1

    def last_index(self) -> int:
        return self._last_index

    def term(self, i: int) -> int:
        trunc = self.apply_state.truncated_index
        if i <= trunc:
            if i == trunc:
                return self.apply_state.truncated_term
            raise Compacted(f"term: {i} < truncated index {trunc}")
        if i > self._last_index:
            raise Unavailable(f"term: {i} > last index {self._last_index}")
        cache = self._cache
        if cache and i >= cache[0].index:
            return cache[i - cache[0].index].term
        value = self.engine.get(keys.raft_log_key(self.region_id, i))
        if value is None:
            raise StorageError(f"region {self.region_id}: log entry {i} missing on disk")
        return entry_term(value)

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        trunc = self.apply_state.truncated_index
        if lo <= trunc:
            raise Compacted(f"entries: {lo} <= truncated index {trunc}")
        if hi > self._last_index + 1:
            raise Unavailable(f"entries: hi {hi} is out of bound {self._last_index}")
        if lo >= hi:
            return []
        cache = self._cache
        cache_first = cache[0].index if cache else self._last_index + 1
        if lo >= cache_first:
            return limit_size(cache[lo - cache_first : hi - cache_first], max_size)
        ents = self._read_entries(lo, min(hi, cache_first), max_size)
        if hi > cache_first and ents and ents[-1].index == cache_first - 1:
            ents.extend(cache[: hi - cache_first])
        return limit_size(ents, max_size)

    def _read_entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Stored entries [lo, hi), stopping once past `max_size` bytes."""
        out: list[Entry] = []
        size = 0
        with self.engine.read() as txn:
            cur = txn.cursor()
            hi_key = keys.raft_log_key(self.region_id, hi)
            if cur.set_key(keys.raft_log_key(self.region_id, lo)):
                for k, v in cur:
                    if k >= hi_key:
                        break
                    index = lo + len(out)
                    if keys.raft_log_index(k) != index:
                        break
                    e = decode_entry(index, v)
                    out.append(e)
                    size += len(e.data) + 12
                    if size > max_size:
                        return out
        if len(out) != hi - lo:
            raise StorageError(f"region {self.region_id}: log [{lo}, {hi}) has a hole on disk")
        return out

    def snapshot(self) -> Snapshot:
        """A snapshot of the region at its applied index: a header, and the
        data from a read transaction opened now (see `snapshot`)."""
        return open_snapshot(self.engine, self.region_id)

    # -- writes ------------------------------------------------------------

    def _pending(self, batch: WriteBatch) -> _Pending:
        """Our pending state in `batch`; the first write of a batch resets it."""
        if self._batch is batch:
            return self._p
        if self._batch is not None:
            self._batch.abandon(f"region {self.region_id} was written in a newer batch")
        last = self._last_index
        p = self._p
        p.hard_state = self.hard_state
        p.apply = self.apply_state
        p.region = self.region
        p.last_index = last
        p.last_term = self._last_term
        p.tail_start = last + 1
        p.tail = []
        batch.owners[self] = p
        self._batch = batch
        return p

    def on_committed(self, p: _Pending) -> None:
        """The batch is durable: adopt its state, splice its entries into the cache."""
        self._batch = None
        self.hard_state = p.hard_state
        self.region = p.region
        self._last_index = p.last_index
        self._last_term = p.last_term
        cache = self._cache
        if cache and p.tail_start <= cache[-1].index:  # a conflict or a snapshot
            del cache[max(p.tail_start - cache[0].index, 0) :]
        if p.tail:
            cache += p.tail
            if len(cache) > 2 * self._cache_entries:  # trimmed in bulk: amortized O(1)
                del cache[: len(cache) - self._cache_entries]
        if p.apply is not self.apply_state:
            self.apply_state = p.apply
            trunc = p.apply.truncated_index
            if cache and cache[0].index <= trunc:  # compacted away
                del cache[: trunc + 1 - cache[0].index]

    def append(self, batch: WriteBatch, entries: list[Entry]) -> None:
        """Append entries, deleting any stored suffix beyond them (a conflict).

        Entries already compacted are skipped; a gap raises `Unavailable`.
        """
        if not entries:
            return
        p = self._p if self._batch is batch else self._pending(batch)
        first = p.apply.truncated_index + 1
        start, last = entries[0].index, entries[-1].index
        if start < first:
            if last < first:
                return
            entries = entries[first - start :]
            start = first
        if start > p.last_index + 1:
            raise Unavailable(f"missing log entry [last: {p.last_index}, append at: {start}]")
        prefix, pk, header = self._log_prefix, keys.pack_u64, ENTRY_HEADER.pack
        if len(entries) == 1:  # the common case with many regions: skip the comprehension
            e = entries[0]
            batch.put(prefix + pk(start), header(e.term, e.type) + e.data)
        else:
            batch.put_many(
                [(prefix + pk(e.index), header(e.term, e.type) + e.data) for e in entries]
            )
        if p.last_index > last:
            self._delete_log(batch, last + 1, p.last_index + 1)
        if start >= p.tail_start:
            p.tail[start - p.tail_start :] = entries
        else:
            p.tail_start, p.tail = start, list(entries)
        p.last_index, p.last_term = last, entries[-1].term

    def set_hard_state(self, batch: WriteBatch, hs: HardState) -> None:
        p = self._p if self._batch is batch else self._pending(batch)
        p.hard_state = hs
        batch.put(self._hs_key, HARD_STATE.pack(hs.term, hs.vote, hs.commit))

    def set_applied(self, batch: WriteBatch, index: int) -> None:
        """Record the applied index; put it in the batch that applies the data."""
        p: _Pending = self._pending(batch)
        self._set_apply(
            batch, p, ApplyState(index, p.apply.truncated_index, p.apply.truncated_term)
        )

    def set_region(self, batch: WriteBatch, region: RegionState) -> None:
        """Record the region's descriptor, key range and membership."""
        self._pending(batch).region = region
        batch.put(self._region_key, region.encode())

    def compact(self, batch: WriteBatch, index: int) -> None:
        """Discard entries up to `index`, keeping its term as the dummy entry.

        Refuses to discard entries not yet applied.
        """
        p: _Pending = self._pending(batch)
        trunc = p.apply.truncated_index
        if index <= trunc:
            raise Compacted(f"compact: {index} <= {trunc}")
        if index > p.last_index:
            raise Unavailable(f"compact {index} is out of bound {p.last_index}")
        if index > p.apply.applied_index:
            raise ValueError(f"compact {index} is beyond applied {p.apply.applied_index}")
        term = p.tail[index - p.tail_start].term if index >= p.tail_start else self.term(index)
        self._delete_log(batch, trunc + 1, index + 1)
        self._set_apply(batch, p, ApplyState(p.apply.applied_index, index, term))

    def apply_snapshot(
        self, batch: WriteBatch, snapshot: Snapshot, region: RegionState | None = None
    ) -> None:
        """Replace the whole log with `snapshot`; applied = its index.

        Raft state only: `kv.ingest_snapshot` also replaces the data.
        """
        p: _Pending = self._pending(batch)
        meta = snapshot.metadata
        if meta.index <= p.apply.truncated_index:
            raise SnapshotOutOfDate(f"snapshot {meta.index} <= current {p.apply.truncated_index}")
        self._delete_log(batch, p.apply.truncated_index + 1, p.last_index + 1)
        self._set_apply(batch, p, ApplyState(meta.index, meta.index, meta.term))
        r = region or p.region
        self.set_region(batch, RegionState(r.descriptor, r.start, r.end, meta.conf_state))
        p.last_index, p.last_term = meta.index, meta.term
        p.tail_start, p.tail = meta.index + 1, []

    def _set_apply(self, batch: WriteBatch, p: _Pending, state: ApplyState) -> None:
        p.apply = state
        batch.put(self._apply_key, state.encode())

    def _delete_log(self, batch: WriteBatch, lo: int, hi: int) -> None:
        if lo < hi:
            prefix, pk = self._log_prefix, keys.pack_u64
            batch.delete_range(prefix + pk(lo), prefix + pk(hi))
