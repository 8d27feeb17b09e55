"""Region snapshots that stream: a small header travels in Raft's
`Snapshot.data`, the user data is read in chunks from one LMDB read
transaction opened when Raft asked for the snapshot.

`Snapshot.data` is msgpack ``[2, descriptor, start, end, [c0, s0, ...]]``:
format 2, the region's descriptor and key range, and its client sessions
(big-endian client id, session), so exactly-once promises travel with the
data. The receiver adds a sixth field, the name of the staging file (in
the data dir's ``snap/``) holding the data it received (see `ingest`); a
sender's header never has one.

Why one read transaction: the applied index, its term, the membership and
every data chunk then come from the same committed state, however long the
transfer takes and whatever commits meanwhile. LMDB keeps the pages of that
state alive while the transaction is open (the file may grow meanwhile), so
every source is closed once its transfer ends, or at the end of the turn if
no transfer claimed it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lmdb
import msgpack

from multiraft.raft.types import Snapshot, SnapshotMetadata

from . import keys
from .errors import StorageError
from .states import ApplyState, RegionState, entry_term, pack, unpack

if TYPE_CHECKING:
    from .engine import Engine, Txn

FORMAT = 2
"""Header format: the data streams separately (1 was everything in one message)."""


@dataclass(slots=True, frozen=True)
class SnapshotHeader:
    """What `Snapshot.data` says; `staged` names the receiver's staging file."""

    descriptor: bytes
    start: bytes
    end: bytes
    sessions: list[bytes]
    staged: str | None = None

    def encode(self) -> bytes:
        fields: list[Any] = [FORMAT, self.descriptor, self.start, self.end, self.sessions]
        if self.staged is not None:
            fields.append(self.staged)
        return pack(fields)

    @staticmethod
    def decode(data: bytes, *, staged: bool = False) -> SnapshotHeader:
        """Decode and check a header; `staged`: it must name a staging file
        (only the receiver's own headers do). Raises ValueError."""
        try:
            fields = unpack(data)
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            raise ValueError(f"undecodable snapshot header: {e}") from None
        n = 6 if staged else 5
        if not isinstance(fields, list) or len(fields) != n or fields[0] != FORMAT:
            raise ValueError("not a streamed snapshot header")
        _, descriptor, start, end, sessions, *rest = fields
        if not all(isinstance(b, bytes) for b in (descriptor, start, end)):
            raise ValueError("bad snapshot header range")
        if not isinstance(sessions, list) or len(sessions) % 2:
            raise ValueError("bad snapshot header sessions")
        if not all(isinstance(b, bytes) for b in sessions):
            raise ValueError("bad snapshot header sessions")
        if rest and not isinstance(rest[0], str):
            raise ValueError("bad staging path")
        return SnapshotHeader(descriptor, start, end, sessions, rest[0] if rest else None)

    def contains(self, user_key: bytes) -> bool:
        return self.start <= user_key and (not self.end or user_key < self.end)


class SnapshotSource:
    """The data of one snapshot, read chunk by chunk from its read transaction.

    Each chunk uses a fresh cursor and the transaction is the only thing
    kept. When the engine grows its map (`lmdb.MapFullError` on a commit),
    py-lmdb invalidates every open transaction: the next chunk then raises
    `StorageError` and the transfer fails; Raft retries with a new snapshot
    (the map doubles each time, so this is rare).
    """

    def __init__(
        self, txn: Txn, region_id: int, meta: SnapshotMetadata, lo: bytes, hi: bytes
    ) -> None:
        self.region_id = region_id
        self.index = meta.index
        self.term = meta.term
        self._txn: Txn | None = txn
        self._next = lo
        self._hi = hi

    @property
    def closed(self) -> bool:
        return self._txn is None

    def next_chunk(self, max_bytes: int) -> tuple[list[bytes], bool]:
        """``([k0, v0, k1, v1, ...], done)``: user keys and values in key
        order, at least one pair unless done, about `max_bytes` of them (a
        chunk ends after the pair that reaches the limit)."""
        if self._txn is None:
            raise StorageError(f"region {self.region_id}: snapshot source is closed")
        try:
            return self._read(self._txn, max_bytes)
        except lmdb.Error as e:
            self.close()
            raise StorageError(f"region {self.region_id}: snapshot read failed: {e}") from None

    def _read(self, txn: Txn, max_bytes: int) -> tuple[list[bytes], bool]:
        flat: list[bytes] = []
        size = 0
        cur = txn.cursor()
        try:
            ok = cur.set_range(self._next)
            while ok and size < max_bytes:
                k = cur.key()
                if k >= self._hi:
                    ok = False
                    break
                v = cur.value()
                flat.append(k[1:])
                flat.append(v)
                size += len(k) + len(v)
                ok = cur.next()
            done = not ok or cur.key() >= self._hi
            if not done:
                self._next = cur.key()
        finally:
            cur.close()
        return flat, done

    def close(self) -> None:
        """End the read transaction (idempotent)."""
        if self._txn is not None:
            txn, self._txn = self._txn, None
            with contextlib.suppress(lmdb.Error):  # already invalidated by a resize
                txn.abort()


class SnapshotSources:
    """Sources Raft asked for and no transfer has claimed yet."""

    def __init__(self) -> None:
        self._open: list[SnapshotSource] = []
        self._swept: set[int] = set()
        """ids of the sources already open at the last sweep."""

    def add(self, source: SnapshotSource) -> None:
        self._open.append(source)

    def claim(self, region_id: int, index: int, term: int) -> SnapshotSource | None:
        """Hand the source of this snapshot over to its transfer, which closes it."""
        for i, s in enumerate(self._open):
            if (s.region_id, s.index, s.term) == (region_id, index, term):
                self._swept.discard(id(s))
                return self._open.pop(i)
        return None

    def sweep(self) -> int:
        """Once per store turn: close the sources already open at the last
        sweep (Raft asked a turn ago and nothing was sent), so no read
        transaction leaks; returns how many were closed."""
        stale = [s for s in self._open if id(s) in self._swept]
        for s in stale:
            s.close()
        self._open = [s for s in self._open if not s.closed]
        self._swept = {id(s) for s in self._open}
        return len(stale)

    def close_all(self) -> None:
        for s in self._open:
            s.close()
        self._open = []
        self._swept = set()

    def __len__(self) -> int:
        return len(self._open)


def open_snapshot(engine: Engine, region_id: int) -> Snapshot:
    """A snapshot of the region at its applied index: the header now, the
    data later through the source registered in `engine.snapshot_sources`."""
    txn = engine.read()
    try:
        region_value = txn.get(keys.region_state_key(region_id))
        apply_value = txn.get(keys.apply_state_key(region_id))
        if region_value is None or apply_value is None:
            raise StorageError(f"region {region_id}: no state to snapshot")
        region = RegionState.decode(region_value)
        apply = ApplyState.decode(apply_value)
        meta = SnapshotMetadata(
            region.conf_state, apply.applied_index, _term_at(txn, region_id, apply)
        )
        prefix = keys.session_prefix(region_id)
        sessions = flat_range(txn, prefix, prefix_end(prefix), len(prefix))
    except BaseException:
        txn.abort()
        raise
    lo, hi = keys.data_range(region.start, region.end)
    engine.snapshot_sources.add(SnapshotSource(txn, region_id, meta, lo, hi))
    header = SnapshotHeader(region.descriptor, region.start, region.end, sessions)
    return Snapshot(header.encode(), meta)


def flat_range(txn: Txn, lo: bytes, hi: bytes, strip: int) -> list[bytes]:
    """[k0, v0, k1, v1, ...] of the keys in [lo, hi), each without its first
    `strip` bytes (only for small ranges: it is all in memory)."""
    flat: list[bytes] = []
    cur = txn.cursor()
    if cur.set_range(lo):
        for k, v in cur:
            if k >= hi:
                break
            flat.append(k[strip:])
            flat.append(v)
    return flat


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key starting with `prefix` (no 0xff bytes here)."""
    return prefix[:-1] + bytes((prefix[-1] + 1,))


def _term_at(txn: Txn, region_id: int, apply: ApplyState) -> int:
    if apply.applied_index == apply.truncated_index:
        return apply.truncated_term
    value = txn.get(keys.raft_log_key(region_id, apply.applied_index))
    if value is None:
        raise StorageError(f"region {region_id}: applied entry {apply.applied_index} not in log")
    return entry_term(value)
