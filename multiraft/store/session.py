"""Client sessions: exactly-once writes (Raft thesis §6.3).

Every write carries (client id, seq, acked): `acked` says the client has
seen the answer of every seq below it. The state machine remembers the
result of each seq at or above `acked`, so a retried write is answered from
the table instead of being applied twice. The table is part of the
replicated state: it changes only when entries are applied, it is written in
the same transaction as the data, and every bound on it is counted in log
entries, never in wall-clock time, so all replicas evict the same sessions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import msgpack

from ..errors import InvalidRequest, MultiraftError
from ..protocol.wire import error_from_wire, error_to_wire
from ..storage import keys
from ..storage.engine import Engine, WriteBatch

MAX_RESULTS_PER_CLIENT = 4096
"""Answers kept per client; an AsyncClient has at most this many writes in flight."""
MAX_CLIENTS = 10_000
"""Sessions kept per region; the least recently active one is evicted first."""


@dataclass(slots=True)
class Session:
    acked: int = 0
    last_index: int = 0
    """Log index of the client's latest write: the eviction order."""
    results: dict[int, Any] = field(default_factory=dict)
    """seq -> the write's result as stored (`result_to_disk`): a session is
    re-encoded whenever it changes, with every result it keeps, so they are
    kept ready to pack and turned back into values only for a retry."""

    def encode(self) -> bytes:
        return cast(bytes, msgpack.packb([self.acked, self.last_index, list(self.results.items())]))

    @staticmethod
    def decode(value: bytes) -> Session:
        acked, last_index, results = msgpack.unpackb(value)
        return Session(acked, last_index, dict(results))


def result_to_disk(result: Any) -> list[Any]:
    """["ok", value] or ["err", kind, message, detail]; never changed once
    made, so a put's (the most common) is one shared list."""
    if result is None:
        return _OK_NONE
    if isinstance(result, MultiraftError):
        return ["err", *error_to_wire(result)]
    return ["ok", result]


_OK_NONE = ["ok", None]


def result_from_disk(stored: list[Any]) -> Any:
    return stored[1] if stored[0] == "ok" else error_from_wire(stored[1:])


DUPLICATE_BELOW_ACKED = InvalidRequest("sequence number already acknowledged")
NOT_APPLIED: Any = object()
"""`SessionTable.lookup`'s answer for a write it has no result of."""


class SessionTable:
    """The sessions of one region; `dirty` names what the next batch must write."""

    def __init__(self, sessions: dict[int, Session] | None = None) -> None:
        self.sessions: dict[int, Session] = sessions or {}
        self.dirty: set[int] = set()
        self.evicted: set[int] = set()

    def lookup(self, client: int, seq: int, acked: int, index: int) -> Any:
        """The stored answer if (client, seq) was applied before, else
        NOT_APPLIED. Also forgets answers the client has acknowledged."""
        s = self.sessions.get(client)
        if s is None:
            return NOT_APPLIED
        if acked > s.acked:
            s.acked = acked
            # Results arrive in about seq order: forget from the oldest until
            # the first one still unacknowledged.
            results = s.results
            stale = []
            for old in results:
                if old >= acked:
                    break
                stale.append(old)
            for old in stale:
                del results[old]
            self.dirty.add(client)
        if seq in s.results:
            return result_from_disk(s.results[seq])
        if seq < s.acked:
            return DUPLICATE_BELOW_ACKED
        return NOT_APPLIED

    def record(self, client: int, seq: int, acked: int, index: int, result: Any) -> None:
        s = self.sessions.get(client)
        if s is None:
            self._make_room()
            s = self.sessions[client] = Session(acked=acked)
        s.results[seq] = result_to_disk(result)
        s.last_index = index
        if len(s.results) > MAX_RESULTS_PER_CLIENT:
            del s.results[min(s.results)]
        self.dirty.add(client)

    def _make_room(self) -> None:
        """Evict the least recently active session if the table is full."""
        if len(self.sessions) < MAX_CLIENTS:
            return
        oldest = min(self.sessions, key=lambda c: (self.sessions[c].last_index, c))
        del self.sessions[oldest]
        self.dirty.discard(oldest)
        self.evicted.add(oldest)

    def take_changes(self) -> tuple[dict[int, bytes], set[int]]:
        """Encoded sessions to write and client ids to delete since the last call."""
        writes = {c: self.sessions[c].encode() for c in self.dirty if c in self.sessions}
        deletes = self.evicted - set(writes)
        self.dirty = set()
        self.evicted = set()
        return writes, deletes

    def copy(self) -> SessionTable:
        """A deep copy, for the new region of a split (retries may land on either half)."""
        return SessionTable(
            {c: Session(s.acked, s.last_index, dict(s.results)) for c, s in self.sessions.items()}
        )


def load_sessions(engine: Engine, region_id: int) -> SessionTable:
    """A region's session table as its last committed batch left it."""
    prefix = keys.session_prefix(region_id)
    sessions = {}
    with engine.read() as txn:
        cur = txn.cursor()
        if cur.set_range(prefix):
            for k, v in cur:
                if not k.startswith(prefix):
                    break
                sessions[int.from_bytes(k[len(prefix) :], "big")] = Session.decode(v)
    return SessionTable(sessions)


def write_changes(batch: WriteBatch, region_id: int, table: SessionTable) -> None:
    """The sessions that changed since the last call, into `batch`."""
    writes, deletes = table.take_changes()
    prefix = keys.session_prefix(region_id)
    for client, value in writes.items():
        batch.put(prefix + keys.pack_u64(client), value)
    for client in deletes:
        batch.delete(prefix + keys.pack_u64(client))


def write_all(batch: WriteBatch, region_id: int, table: SessionTable) -> None:
    """Every session of `table`, as a new region's (a split's right half)."""
    prefix = keys.session_prefix(region_id)
    for client, session in table.sessions.items():
        batch.put(prefix + keys.pack_u64(client), session.encode())
