"""MemoryStorage (after etcd-raft's storage_test.go)."""

import pytest

from multiraft.raft.errors import Compacted, SnapshotOutOfDate, Unavailable
from multiraft.raft.storage import MemoryStorage
from multiraft.raft.types import (
    ConfState,
    Entry,
    HardState,
    Snapshot,
    SnapshotMetadata,
)


def snap(index, term, cs=None, data=b""):
    return Snapshot(data, SnapshotMetadata(cs or ConfState(), index, term))


def storage_with(ents):
    """A storage whose dummy entry is ents[0] (as etcd's MemoryStorage{ents: ents})."""
    s = MemoryStorage()
    if ents[0].index > 0:
        s.apply_snapshot(snap(ents[0].index, ents[0].term))
    s.append(ents[1:])
    return s


def log_of(s):
    """Every (term, index) the storage answers for, the dummy included."""
    return [Entry(s.term(i), i) for i in range(s.first_index() - 1, s.last_index() + 1)]


ENTS = [Entry(3, 3), Entry(4, 4), Entry(5, 5)]


def test_new_storage():
    s = MemoryStorage()
    assert (s.first_index(), s.last_index()) == (1, 0)
    assert s.term(0) == 0
    assert s.entries(1, 1, 100) == []
    assert s.snapshot().is_empty()
    assert s.initial_state() == (HardState(), ConfState())


def test_initial_state():
    cs = ConfState((1, 2, 3))
    s = MemoryStorage(cs)
    assert s.initial_state() == (HardState(), cs)
    assert s.snapshot().metadata.conf_state == cs
    hs = HardState(2, 1, 0)
    s.set_hard_state(hs)
    assert s.initial_state() == (hs, cs)


@pytest.mark.parametrize(
    "i, err, want",
    [
        (2, Compacted, None),
        (3, None, 3),
        (4, None, 4),
        (5, None, 5),
        (6, Unavailable, None),
    ],
)
def test_term(i, err, want):
    s = storage_with(ENTS)
    if err:
        with pytest.raises(err):
            s.term(i)
    else:
        assert s.term(i) == want


ENTS4 = [Entry(3, 3), Entry(4, 4), Entry(5, 5), Entry(6, 6)]
SZ = Entry(0, 0).size()


@pytest.mark.parametrize(
    "lo, hi, max_size, err, want",
    [
        (2, 6, 2**64, Compacted, None),
        (3, 4, 2**64, Compacted, None),
        (4, 5, 2**64, None, [Entry(4, 4)]),
        (4, 6, 2**64, None, [Entry(4, 4), Entry(5, 5)]),
        (4, 7, 2**64, None, [Entry(4, 4), Entry(5, 5), Entry(6, 6)]),
        # even if max_size is zero, the first entry is returned
        (4, 7, 0, None, [Entry(4, 4)]),
        (4, 7, 2 * SZ, None, [Entry(4, 4), Entry(5, 5)]),
        (4, 7, 2 * SZ + SZ // 2, None, [Entry(4, 4), Entry(5, 5)]),
        (4, 7, 3 * SZ - 1, None, [Entry(4, 4), Entry(5, 5)]),
        (4, 7, 3 * SZ, None, [Entry(4, 4), Entry(5, 5), Entry(6, 6)]),
        (4, 8, 2**64, Unavailable, None),
    ],
)
def test_entries(lo, hi, max_size, err, want):
    s = storage_with(ENTS4)
    if err:
        with pytest.raises(err):
            s.entries(lo, hi, max_size)
    else:
        assert s.entries(lo, hi, max_size) == want


def test_last_index():
    s = storage_with(ENTS)
    assert s.last_index() == 5
    s.append([Entry(5, 6)])
    assert s.last_index() == 6


def test_first_index():
    s = storage_with(ENTS)
    assert s.first_index() == 4
    s.compact(4)
    assert s.first_index() == 5


@pytest.mark.parametrize(
    "i, err, windex, wterm, wlen",
    [
        (2, Compacted, 3, 3, 3),
        (3, Compacted, 3, 3, 3),
        (4, None, 4, 4, 2),
        (5, None, 5, 5, 1),
        (6, Unavailable, 3, 3, 3),
    ],
)
def test_compact(i, err, windex, wterm, wlen):
    s = storage_with(ENTS)
    if err:
        with pytest.raises(err):
            s.compact(i)
    else:
        s.compact(i)
    assert s.first_index() - 1 == windex
    assert s.term(windex) == wterm
    assert len(log_of(s)) == wlen


def test_compact_keeps_data_of_later_entries():
    s = MemoryStorage()
    s.append([Entry(1, 1, data=b"a"), Entry(1, 2, data=b"b"), Entry(2, 3, data=b"c")])
    s.compact(2)
    assert s.entries(3, 4, 2**64) == [Entry(2, 3, data=b"c")]
    with pytest.raises(Compacted):
        s.entries(2, 4, 2**64)
    assert s.term(2) == 1


CS = ConfState((1, 2, 3))


@pytest.mark.parametrize("i", [4, 5])
def test_create_snapshot(i):
    s = storage_with(ENTS)
    got = s.create_snapshot(i, CS, b"data")
    assert got == snap(i, i, CS, b"data")
    assert s.snapshot() == got
    # The log is not compacted by a snapshot.
    assert log_of(s) == ENTS


def test_create_snapshot_keeps_conf_state_when_none():
    s = MemoryStorage(CS)
    s.append([Entry(1, 1), Entry(2, 2)])
    assert s.create_snapshot(2, None, b"x").metadata == SnapshotMetadata(CS, 2, 2)


@pytest.mark.parametrize("i, err", [(3, SnapshotOutOfDate), (6, Unavailable)])
def test_create_snapshot_errors(i, err):
    s = storage_with(ENTS)
    before = s.snapshot()
    with pytest.raises(err):
        s.create_snapshot(i, CS, b"data")
    assert s.snapshot() == before


def test_create_snapshot_older_than_last_one():
    s = storage_with(ENTS)
    s.create_snapshot(5, CS, b"")
    with pytest.raises(SnapshotOutOfDate):
        s.create_snapshot(4, CS, b"")


E = Entry


@pytest.mark.parametrize(
    "entries, want",
    [
        # all older than the first index: ignored
        ([E(1, 1), E(2, 2)], [E(3, 3), E(4, 4), E(5, 5)]),
        # the same entries again
        ([E(3, 3), E(4, 4), E(5, 5)], [E(3, 3), E(4, 4), E(5, 5)]),
        # conflicting suffix replaced
        ([E(3, 3), E(6, 4), E(6, 5)], [E(3, 3), E(6, 4), E(6, 5)]),
        ([E(3, 3), E(4, 4), E(5, 5), E(5, 6)], [E(3, 3), E(4, 4), E(5, 5), E(5, 6)]),
        # truncate incoming entries, truncate the existing entries and append
        ([E(3, 2), E(3, 3), E(5, 4)], [E(3, 3), E(5, 4)]),
        # truncate the existing entries and append
        ([E(5, 4)], [E(3, 3), E(5, 4)]),
        # directly append
        ([E(5, 6)], [E(3, 3), E(4, 4), E(5, 5), E(5, 6)]),
        # nothing to do
        ([], [E(3, 3), E(4, 4), E(5, 5)]),
    ],
)
def test_append(entries, want):
    s = storage_with(ENTS)
    s.append(entries)
    assert log_of(s) == want


def test_append_with_gap_raises():
    s = storage_with(ENTS)
    with pytest.raises(Unavailable):
        s.append([Entry(5, 7)])
    assert log_of(s) == ENTS


def test_append_does_not_alias_caller_list():
    s = MemoryStorage()
    ents = [Entry(1, 1)]
    s.append(ents)
    ents.append(Entry(1, 2))
    assert s.last_index() == 1


def test_apply_snapshot():
    s = MemoryStorage()
    s.append([Entry(1, 1), Entry(1, 2)])
    sn = snap(4, 4, CS, b"data")
    s.apply_snapshot(sn)
    assert s.snapshot() == sn
    assert (s.first_index(), s.last_index()) == (5, 4)
    assert s.term(4) == 4
    assert s.initial_state()[1] == CS
    with pytest.raises(Compacted):
        s.term(3)


@pytest.mark.parametrize("index", [3, 4])
def test_apply_snapshot_out_of_date(index):
    s = MemoryStorage()
    s.apply_snapshot(snap(4, 4, CS, b"data"))
    with pytest.raises(SnapshotOutOfDate):
        s.apply_snapshot(snap(index, 3, CS, b"old"))
    assert s.snapshot().metadata.index == 4


def test_a_snapshot_at_index_0_sets_the_membership_of_an_empty_log():
    s = MemoryStorage()
    s.apply_snapshot(snap(0, 0, CS, b""))
    assert s.initial_state()[1] == CS and s.last_index() == 0
    created = MemoryStorage().create_snapshot(0, CS, b"")
    assert created.metadata.index == 0 and created.metadata.conf_state == CS


def test_a_snapshot_at_index_0_is_out_of_date_once_the_log_has_entries():
    s = MemoryStorage()
    s.append([Entry(1, 1)])
    with pytest.raises(SnapshotOutOfDate):
        s.apply_snapshot(snap(0, 0, CS, b""))
    with pytest.raises(SnapshotOutOfDate):
        s.create_snapshot(0, CS, b"")
