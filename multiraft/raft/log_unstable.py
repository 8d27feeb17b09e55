"""Entries and a snapshot that the node has accepted but not yet persisted.

`entries[i]` has index `offset + i`. An incoming snapshot replaces everything;
entries that conflict with new ones are cut off before the new ones are
appended. Once the application persists a Ready, `stable_to` drops what it
wrote.
"""

from __future__ import annotations

from .types import Entry, Snapshot


class Unstable:
    __slots__ = ("entries", "offset", "snapshot")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        """The first index of the log if a pending snapshot defines it."""
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, i: int) -> int | None:
        """The term of entry i if this unstable part knows it."""
        if i < self.offset:
            snap = self.snapshot
            if snap is not None and snap.metadata.index == i:
                return snap.metadata.term
            return None
        last = self.maybe_last_index()
        if last is None or i > last:
            return None
        return self.entries[i - self.offset].term

    def stable_to(self, i: int, t: int) -> None:
        """Entries up to (i, t) are persisted; forget them unless replaced since."""
        gt = self.maybe_term(i)
        if gt is None:
            return
        # Only drop them if the entry at i is still the one that was written:
        # a newer leader may have replaced it in the meantime.
        if gt == t and i >= self.offset:
            self.entries = self.entries[i + 1 - self.offset :]
            self.offset = i + 1

    def stable_snap_to(self, i: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == i:
            self.snapshot = None

    def restore(self, snap: Snapshot) -> None:
        self.offset = snap.metadata.index + 1
        self.entries = []
        self.snapshot = snap

    def truncate_and_append(self, ents: list[Entry]) -> None:
        after = ents[0].index
        if after == self.offset + len(self.entries):
            # The common case: ents directly follow what we have.
            self.entries.extend(ents)
        elif after <= self.offset:
            # Replace everything unstable; the log is truncated to `after`.
            self.offset = after
            self.entries = list(ents)
        else:
            # Keep the entries before `after`, replace the rest.
            self.entries = self.entries[: after - self.offset] + list(ents)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries [lo, hi); the caller keeps lo >= offset and hi <= last + 1."""
        if lo < self.offset or hi > self.offset + len(self.entries) or lo > hi:
            raise IndexError(
                f"unstable.slice[{lo},{hi}) out of bound [{self.offset},"
                f"{self.offset + len(self.entries)}]"
            )
        return self.entries[lo - self.offset : hi - self.offset]
