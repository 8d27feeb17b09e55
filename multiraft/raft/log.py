"""RaftLog: the node's view of its log, stable (Storage) plus unstable.

Invariants: applied <= committed <= last_index(); first_index()-1 is the index
of the latest snapshot (its term is still known); entries in `unstable` win
over entries in storage with the same index.
"""

from __future__ import annotations

from .errors import Compacted, Unavailable
from .log_unstable import Unstable
from .storage import Storage
from .types import NO_LIMIT, Entry, Snapshot, limit_size


class RaftLog:
    __slots__ = ("applied", "committed", "max_next_ents_size", "storage", "unstable")

    def __init__(self, storage: Storage, max_next_ents_size: int = NO_LIMIT) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(last + 1)
        # Everything up to the snapshot is committed and applied by definition.
        self.committed = first - 1
        self.applied = first - 1
        self.max_next_ents_size = max_next_ents_size

    def __repr__(self) -> str:
        return (
            f"RaftLog(committed={self.committed}, applied={self.applied}, "
            f"unstable.offset={self.unstable.offset}, "
            f"len(unstable)={len(self.unstable.entries)})"
        )

    # -- boundaries ------------------------------------------------------------

    def first_index(self) -> int:
        i = self.unstable.maybe_first_index()
        return i if i is not None else self.storage.first_index()

    def last_index(self) -> int:
        i = self.unstable.maybe_last_index()
        return i if i is not None else self.storage.last_index()

    def last_term(self) -> int:
        return self.term(self.last_index())

    def term(self, i: int) -> int:
        """Term of entry i; 0 when i is outside [first_index()-1, last_index()]."""
        t = self.unstable.maybe_term(i)
        if t is not None:
            return t
        if i < self.first_index() - 1 or i > self.last_index():
            return 0
        try:
            return self.storage.term(i)
        except (Compacted, Unavailable):
            return 0

    def match_term(self, i: int, t: int) -> bool:
        return self.term(i) == t

    def is_up_to_date(self, last_index: int, term: int) -> bool:
        """Whether a log ending at (last_index, term) is at least as new as ours (§5.4.1)."""
        lt = self.last_term()
        return term > lt or (term == lt and last_index >= self.last_index())

    # -- appending ---------------------------------------------------------------

    def maybe_append(
        self, index: int, log_term: int, committed: int, ents: list[Entry]
    ) -> int | None:
        """Append `ents` after (index, log_term) if our log matches there.

        Returns the new last index, or None if the log does not match.
        """
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(ents)
        ci = self.find_conflict(ents)
        if ci:
            if ci <= self.committed:
                raise AssertionError(
                    f"entry {ci} conflicts with committed entry (committed {self.committed})"
                )
            self.append(ents[ci - index - 1 :])
        self.commit_to(min(committed, last_new))
        return last_new

    def append(self, ents: list[Entry]) -> int:
        if not ents:
            return self.last_index()
        after = ents[0].index - 1
        if after < self.committed:
            raise AssertionError(f"after({after}) is out of range [committed({self.committed})]")
        self.unstable.truncate_and_append(ents)
        return self.last_index()

    def find_conflict(self, ents: list[Entry]) -> int:
        """Index of the first entry of `ents` not in our log (different term or
        beyond our end), or 0 if all of them are already there."""
        for e in ents:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest (i, term(i)) with i <= index and term(i) <= term.

        A follower uses it to hint where the leader should probe next, so one
        rejection skips a whole term of divergent entries.
        """
        while index > 0:
            t = self.term(index)
            if t <= term:
                return index, t
            index -= 1
        return 0, 0

    # -- committing and applying ------------------------------------------------

    def commit_to(self, to_commit: int) -> None:
        if to_commit > self.committed:
            if self.last_index() < to_commit:
                raise AssertionError(
                    f"to_commit({to_commit}) is out of range [last_index({self.last_index()})]"
                )
            self.committed = to_commit

    def maybe_commit(self, max_index: int, term: int) -> bool:
        """Commit up to max_index only if that entry is of `term` (§5.4.2)."""
        if max_index > self.committed and self.term(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, i: int) -> None:
        if i == 0:
            return
        if self.committed < i or i < self.applied:
            raise AssertionError(
                f"applied({i}) is out of range [prev_applied({self.applied}), "
                f"committed({self.committed})]"
            )
        self.applied = i

    def stable_to(self, i: int, t: int) -> None:
        self.unstable.stable_to(i, t)

    def stable_snap_to(self, i: int) -> None:
        self.unstable.stable_snap_to(i)

    # -- reading -------------------------------------------------------------------

    def unstable_entries(self) -> list[Entry]:
        return list(self.unstable.entries)

    def has_next_ents(self) -> bool:
        return self.committed > max(self.applied + 1, self.first_index()) - 1

    def next_ents(self) -> list[Entry]:
        """Committed entries not yet applied, within max_next_ents_size."""
        off = max(self.applied + 1, self.first_index())
        if self.committed + 1 > off:
            return self.slice(off, self.committed + 1, self.max_next_ents_size)
        return []

    def has_pending_snapshot(self) -> bool:
        snap = self.unstable.snapshot
        return snap is not None and not snap.is_empty()

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    def entries(self, i: int, max_size: int = NO_LIMIT) -> list[Entry]:
        """Entries from i to the end (raises Compacted if i is gone)."""
        if i > self.last_index():
            return []
        return self.slice(i, self.last_index() + 1, max_size)

    def all_entries(self) -> list[Entry]:
        """Every entry after the snapshot (tests and debugging)."""
        return self.entries(self.first_index())

    def slice(self, lo: int, hi: int, max_size: int = NO_LIMIT) -> list[Entry]:
        """Entries [lo, hi) from storage and unstable, within max_size bytes."""
        self._check_bounds(lo, hi)
        if lo == hi:
            return []
        ents: list[Entry] = []
        offset = self.unstable.offset
        if lo < offset:
            stored = self.storage.entries(lo, min(hi, offset), max_size)
            # Storage stopped early because of the size limit: that is all.
            if len(stored) < min(hi, offset) - lo:
                return stored
            ents = stored
        if hi > offset:
            unstable = self.unstable.slice(max(lo, offset), hi)
            ents = ents + unstable if ents else unstable
        return limit_size(ents, max_size)

    def _check_bounds(self, lo: int, hi: int) -> None:
        if lo > hi:
            raise AssertionError(f"invalid slice {lo} > {hi}")
        fi = self.first_index()
        if lo < fi:
            raise Compacted(f"slice: {lo} < first index {fi}")
        if hi > self.last_index() + 1:
            raise AssertionError(f"slice[{lo},{hi}) out of bound [{fi},{self.last_index()}]")

    # -- snapshots -----------------------------------------------------------------

    def restore(self, snap: Snapshot) -> None:
        """Throw the log away and start again from `snap`."""
        self.committed = snap.metadata.index
        self.unstable.restore(snap)
