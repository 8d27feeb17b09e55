"""The `Storage` protocol the Raft core reads its stable log from, and an
in-memory implementation for tests and for the core's own harness.

The core only ever reads from Storage; the application writes to it after
handling a `Ready` (entries and HardState first, then sends messages).
"""

from __future__ import annotations

from typing import Protocol

from .errors import Compacted, SnapshotOutOfDate, Unavailable
from .types import (
    ConfState,
    Entry,
    HardState,
    Snapshot,
    SnapshotMetadata,
    limit_size,
)


class Storage(Protocol):
    """Read access to a node's persisted Raft state.

    Indexes: entries (first_index()-1, last_index()] are available, where
    first_index()-1 is the index of the last snapshot (its term is still
    answered by `term`).
    """

    def initial_state(self) -> tuple[HardState, ConfState]:
        """HardState and ConfState persisted at the last restart."""
        ...

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries [lo, hi), at most `max_size` bytes but at least one.

        Raises `Compacted` if lo <= the snapshot index.
        """
        ...

    def term(self, i: int) -> int:
        """Term of entry i, for i in [first_index()-1, last_index()].

        Raises `Compacted` below that range, `Unavailable` above it.
        """
        ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot(self) -> Snapshot:
        """The most recent snapshot (may raise SnapshotTemporarilyUnavailable)."""
        ...


class MemoryStorage:
    """A `Storage` held in lists; `_ents[0]` is a dummy entry at the snapshot."""

    def __init__(self, conf_state: ConfState | None = None) -> None:
        """`conf_state`: the initial membership of a bootstrapped group."""
        self.hard_state = HardState()
        self._snapshot = Snapshot(metadata=SnapshotMetadata(conf_state or ConfState()))
        self._ents: list[Entry] = [Entry(0, 0)]

    # -- Storage protocol --------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.hard_state, self._snapshot.metadata.conf_state

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        offset = self._ents[0].index
        if lo <= offset:
            raise Compacted(f"entries: {lo} <= snapshot index {offset}")
        if hi > self.last_index() + 1:
            raise Unavailable(f"entries: hi {hi} is out of bound {self.last_index()}")
        return limit_size(self._ents[lo - offset : hi - offset], max_size)

    def term(self, i: int) -> int:
        offset = self._ents[0].index
        if i < offset:
            raise Compacted(f"term: {i} < snapshot index {offset}")
        if i - offset >= len(self._ents):
            raise Unavailable(f"term: {i} > last index {self.last_index()}")
        return self._ents[i - offset].term

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # -- writes (the application's side) ------------------------------------

    def set_hard_state(self, hs: HardState) -> None:
        self.hard_state = hs

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace the whole log with `snap`. A snapshot at index 0 (a
        membership and no data, as a new group starts) is taken only while
        the log is empty."""
        if self._is_out_of_date(snap.metadata.index):
            raise SnapshotOutOfDate(
                f"snapshot {snap.metadata.index} <= current {self._snapshot.metadata.index}"
            )
        self._snapshot = snap
        self._ents = [Entry(snap.metadata.term, snap.metadata.index)]

    def create_snapshot(self, i: int, conf_state: ConfState | None, data: bytes) -> Snapshot:
        """Record a snapshot at applied index i (the log is not compacted)."""
        if self._is_out_of_date(i):
            raise SnapshotOutOfDate(f"snapshot {i} <= current {self._snapshot.metadata.index}")
        if i > self.last_index():
            raise Unavailable(f"snapshot {i} is out of bound {self.last_index()}")
        cs = conf_state if conf_state is not None else self._snapshot.metadata.conf_state
        self._snapshot = Snapshot(data, SnapshotMetadata(cs, i, self.term(i)))
        return self._snapshot

    def _is_out_of_date(self, i: int) -> bool:
        current = self._snapshot.metadata.index
        if i == current == 0:
            return self.last_index() != 0
        return i <= current

    def compact(self, compact_index: int) -> None:
        """Discard entries up to compact_index, keeping its term as the dummy."""
        offset = self._ents[0].index
        if compact_index <= offset:
            raise Compacted(f"compact: {compact_index} <= {offset}")
        if compact_index > self.last_index():
            raise Unavailable(f"compact {compact_index} is out of bound {self.last_index()}")
        i = compact_index - offset
        self._ents = [Entry(self._ents[i].term, self._ents[i].index)] + self._ents[i + 1 :]

    def append(self, entries: list[Entry]) -> None:
        """Append entries, truncating any conflicting suffix first."""
        if not entries:
            return
        first = self.first_index()
        last = entries[-1].index
        if last < first:
            return
        if first > entries[0].index:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self._ents[0].index
        if offset > len(self._ents):
            raise Unavailable(
                f"missing log entry [last: {self.last_index()}, append at: {entries[0].index}]"
            )
        del self._ents[offset:]
        self._ents.extend(entries)
