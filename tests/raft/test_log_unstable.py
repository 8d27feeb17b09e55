"""Unstable (after etcd-raft's log_unstable_test.go)."""

import pytest

from multiraft.raft.log_unstable import Unstable
from multiraft.raft.types import Entry, Snapshot, SnapshotMetadata


def E(index, term):
    return Entry(term, index)


def snap(index, term):
    return Snapshot(metadata=SnapshotMetadata(index=index, term=term))


def unstable(entries, offset, snapshot=None):
    u = Unstable(offset)
    u.entries = list(entries)
    u.snapshot = snapshot
    return u


@pytest.mark.parametrize(
    "entries, offset, snapshot, want",
    [
        # no snapshot
        ([E(5, 1)], 5, None, None),
        ([], 0, None, None),
        # has snapshot
        ([E(5, 1)], 5, snap(4, 1), 5),
        ([], 5, snap(4, 1), 5),
    ],
)
def test_maybe_first_index(entries, offset, snapshot, want):
    assert unstable(entries, offset, snapshot).maybe_first_index() == want


@pytest.mark.parametrize(
    "entries, offset, snapshot, want",
    [
        # last in entries
        ([E(5, 1)], 5, None, 5),
        ([E(5, 1)], 5, snap(4, 1), 5),
        # last in snapshot
        ([], 5, snap(4, 1), 4),
        # empty unstable
        ([], 0, None, None),
    ],
)
def test_maybe_last_index(entries, offset, snapshot, want):
    assert unstable(entries, offset, snapshot).maybe_last_index() == want


@pytest.mark.parametrize(
    "entries, offset, snapshot, index, want",
    [
        # term from entries
        ([E(5, 1)], 5, None, 5, 1),
        ([E(5, 1)], 5, None, 6, None),
        ([E(5, 1)], 5, None, 4, None),
        ([E(5, 1)], 5, snap(4, 1), 5, 1),
        ([E(5, 1)], 5, snap(4, 1), 6, None),
        # term from snapshot
        ([E(5, 1)], 5, snap(4, 1), 4, 1),
        ([E(5, 1)], 5, snap(4, 1), 3, None),
        ([], 5, snap(4, 1), 5, None),
        ([], 5, snap(4, 1), 4, 1),
        ([], 0, None, 5, None),
    ],
)
def test_maybe_term(entries, offset, snapshot, index, want):
    assert unstable(entries, offset, snapshot).maybe_term(index) == want


def test_restore():
    u = unstable([E(5, 1)], 5, snap(4, 1))
    s = snap(6, 2)
    u.restore(s)
    assert u.offset == 7
    assert u.entries == []
    assert u.snapshot == s


@pytest.mark.parametrize(
    "entries, offset, snapshot, index, term, woffset, wlen",
    [
        ([], 0, None, 5, 1, 0, 0),
        ([E(5, 1)], 5, None, 5, 1, 6, 0),  # stable to the first entry
        ([E(5, 1), E(6, 1)], 5, None, 5, 1, 6, 1),  # stable to the first entry
        ([E(6, 2)], 6, None, 6, 1, 6, 1),  # stable to the first entry, term mismatch
        ([E(5, 1)], 5, None, 4, 1, 5, 1),  # stable to old entry
        ([E(5, 1)], 5, None, 4, 2, 5, 1),  # stable to old entry
        ([E(5, 1)], 5, None, 6, 1, 5, 1),  # stable to an entry we do not have
        # with snapshot
        ([E(5, 1)], 5, snap(4, 1), 5, 1, 6, 0),  # stable to the first entry
        ([E(5, 1), E(6, 1)], 5, snap(4, 1), 5, 1, 6, 1),  # stable to the first entry
        ([E(6, 2)], 6, snap(5, 1), 6, 1, 6, 1),  # first entry, term mismatch
        ([E(5, 1)], 5, snap(4, 1), 4, 1, 5, 1),  # stable to snapshot
        ([E(5, 2)], 5, snap(4, 2), 4, 1, 5, 1),  # stable to old entry
    ],
)
def test_stable_to(entries, offset, snapshot, index, term, woffset, wlen):
    u = unstable(entries, offset, snapshot)
    u.stable_to(index, term)
    assert u.offset == woffset
    assert len(u.entries) == wlen
    assert u.snapshot == snapshot  # stable_to never touches the snapshot


def test_stable_to_stale_term_after_replacement():
    # Entries 5..7 of term 1 were handed out for persistence; meanwhile a new
    # leader replaced 6.. with term 2. Persisting (7, 1) must not drop anything.
    u = unstable([E(5, 1), E(6, 1), E(7, 1)], 5)
    u.truncate_and_append([E(6, 2)])
    u.stable_to(7, 1)
    assert (u.offset, u.entries) == (5, [E(5, 1), E(6, 2)])
    u.stable_to(6, 1)  # index present, but with another term now
    assert (u.offset, u.entries) == (5, [E(5, 1), E(6, 2)])
    u.stable_to(5, 1)
    assert (u.offset, u.entries) == (6, [E(6, 2)])


@pytest.mark.parametrize(
    "index, has_snap_after",
    [(4, False), (5, True), (3, True)],
)
def test_stable_snap_to(index, has_snap_after):
    u = unstable([E(5, 1)], 5, snap(4, 1))
    u.stable_snap_to(index)
    assert (u.snapshot is not None) == has_snap_after
    assert (u.offset, u.entries) == (5, [E(5, 1)])


def test_stable_snap_to_without_snapshot():
    u = unstable([E(5, 1)], 5)
    u.stable_snap_to(4)
    assert u.snapshot is None


@pytest.mark.parametrize(
    "entries, offset, to_append, woffset, wentries",
    [
        # append to the end
        ([E(5, 1)], 5, [E(6, 1), E(7, 1)], 5, [E(5, 1), E(6, 1), E(7, 1)]),
        # replace the unstable entries
        ([E(5, 1)], 5, [E(5, 2), E(6, 2)], 5, [E(5, 2), E(6, 2)]),
        ([E(5, 1)], 5, [E(4, 2), E(5, 2), E(6, 2)], 4, [E(4, 2), E(5, 2), E(6, 2)]),
        # truncate the existing entries and append
        ([E(5, 1), E(6, 1), E(7, 1)], 5, [E(6, 2)], 5, [E(5, 1), E(6, 2)]),
        (
            [E(5, 1), E(6, 1), E(7, 1)],
            5,
            [E(7, 2), E(8, 2)],
            5,
            [E(5, 1), E(6, 1), E(7, 2), E(8, 2)],
        ),
        # empty unstable: append at the offset
        ([], 5, [E(5, 1)], 5, [E(5, 1)]),
    ],
)
def test_truncate_and_append(entries, offset, to_append, woffset, wentries):
    u = unstable(entries, offset, snap(4, 1))
    u.truncate_and_append(to_append)
    assert u.offset == woffset
    assert u.entries == wentries
    assert u.snapshot == snap(4, 1)


def test_truncate_and_append_does_not_alias_input():
    u = unstable([E(5, 1)], 5)
    ents = [E(4, 2)]
    u.truncate_and_append(ents)
    ents.append(E(5, 2))
    assert u.entries == [E(4, 2)]


U = [E(5, 1), E(6, 1), E(7, 1)]


@pytest.mark.parametrize(
    "lo, hi, want",
    [
        (5, 5, []),
        (5, 6, [E(5, 1)]),
        (6, 8, [E(6, 1), E(7, 1)]),
        (5, 8, U),
        (8, 8, []),
    ],
)
def test_slice(lo, hi, want):
    assert unstable(U, 5).slice(lo, hi) == want


@pytest.mark.parametrize("lo, hi", [(4, 6), (5, 9), (7, 6), (9, 9)])
def test_slice_out_of_bounds(lo, hi):
    with pytest.raises(IndexError):
        unstable(U, 5).slice(lo, hi)
