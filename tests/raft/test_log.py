"""RaftLog (after etcd-raft's log_test.go)."""

import pytest

from multiraft.raft.errors import Compacted, Unavailable
from multiraft.raft.log import NO_LIMIT, RaftLog
from multiraft.raft.storage import MemoryStorage
from multiraft.raft.types import Entry, Snapshot, SnapshotMetadata


def E(index, term, data=b""):
    return Entry(term, index, data=data)


def snap(index, term):
    return Snapshot(metadata=SnapshotMetadata(index=index, term=term))


def new_log(ents=(), snapshot=None, stable=(), **kw):
    """A log over a storage holding `snapshot` and `stable`, with `ents` unstable."""
    s = MemoryStorage()
    if snapshot is not None:
        s.apply_snapshot(snapshot)
    s.append(list(stable))
    log = RaftLog(s, **kw)
    log.append(list(ents))
    return log


PREV3 = [E(1, 1), E(2, 2), E(3, 3)]


@pytest.mark.parametrize(
    "ents, want",
    [
        # no conflict, empty ents
        ([], 0),
        # no conflict
        ([E(1, 1), E(2, 2), E(3, 3)], 0),
        ([E(2, 2), E(3, 3)], 0),
        ([E(3, 3)], 0),
        # no conflict, but has new entries
        ([E(1, 1), E(2, 2), E(3, 3), E(4, 4), E(5, 4)], 4),
        ([E(2, 2), E(3, 3), E(4, 4), E(5, 4)], 4),
        ([E(3, 3), E(4, 4), E(5, 4)], 4),
        ([E(4, 4), E(5, 4)], 4),
        # conflicts with existing entries
        ([E(1, 4), E(2, 4)], 1),
        ([E(2, 1), E(3, 4), E(4, 4)], 2),
        ([E(3, 1), E(4, 2), E(5, 4), E(6, 4)], 3),
    ],
)
def test_find_conflict(ents, want):
    assert new_log(PREV3).find_conflict(ents) == want


def ents_from(first, *terms):
    """(first, terms[0]) is the snapshot; the rest follow it."""
    return [E(first + i, t) for i, t in enumerate(terms)]


@pytest.mark.parametrize(
    "ents, index, term, want",
    [
        # log starts from index 1
        (ents_from(0, 0, 2, 2, 5, 5, 5), 100, 2, 100),  # beyond the log
        (ents_from(0, 0, 2, 2, 5, 5, 5), 5, 6, 5),
        (ents_from(0, 0, 2, 2, 5, 5, 5), 5, 5, 5),
        (ents_from(0, 0, 2, 2, 5, 5, 5), 5, 4, 2),
        (ents_from(0, 0, 2, 2, 5, 5, 5), 5, 2, 2),
        (ents_from(0, 0, 2, 2, 5, 5, 5), 5, 1, 0),
        (ents_from(0, 0, 2, 2, 5, 5, 5), 1, 2, 1),
        (ents_from(0, 0, 2, 2, 5, 5, 5), 1, 1, 0),
        (ents_from(0, 0, 2, 2, 5, 5, 5), 0, 0, 0),
        # log with compacted entries
        (ents_from(10, 3, 3, 3, 4, 4, 4), 30, 3, 30),  # beyond the log
        (ents_from(10, 3, 3, 3, 4, 4, 4), 14, 9, 14),
        (ents_from(10, 3, 3, 3, 4, 4, 4), 14, 4, 14),
        (ents_from(10, 3, 3, 3, 4, 4, 4), 14, 3, 12),
        (ents_from(10, 3, 3, 3, 4, 4, 4), 14, 2, 9),
        (ents_from(10, 3, 3, 3, 4, 4, 4), 11, 5, 11),
        (ents_from(10, 3, 3, 3, 4, 4, 4), 10, 5, 10),
        (ents_from(10, 3, 3, 3, 4, 4, 4), 10, 3, 10),
        (ents_from(10, 3, 3, 3, 4, 4, 4), 10, 2, 9),
        (ents_from(10, 3, 3, 3, 4, 4, 4), 9, 2, 9),  # compacted
        (ents_from(10, 3, 3, 3, 4, 4, 4), 4, 2, 4),  # compacted
        (ents_from(10, 3, 3, 3, 4, 4, 4), 0, 0, 0),
    ],
)
def test_find_conflict_by_term(ents, index, term, want):
    s0 = ents[0]
    log = new_log(ents[1:], snapshot=snap(s0.index, s0.term) if s0.index else None)
    # The term comes back too; 0 where we do not know it.
    assert log.find_conflict_by_term(index, term) == (want, log.term(want))


@pytest.mark.parametrize(
    "last_index, term, want",
    [
        # greater term, ignore last_index
        (2, 4, True),
        (3, 4, True),
        (4, 4, True),
        # smaller term, ignore last_index
        (2, 2, False),
        (3, 2, False),
        (4, 2, False),
        # equal term, equal or larger last_index wins
        (2, 3, False),
        (3, 3, True),
        (4, 3, True),
    ],
)
def test_is_up_to_date(last_index, term, want):
    assert new_log(PREV3).is_up_to_date(last_index, term) is want


@pytest.mark.parametrize(
    "ents, windex, wents, wunstable",
    [
        ([], 2, [E(1, 1), E(2, 2)], 3),
        ([E(3, 2)], 3, [E(1, 1), E(2, 2), E(3, 2)], 3),
        # conflicts with index 1
        ([E(1, 2)], 1, [E(1, 2)], 1),
        # conflicts with index 2
        ([E(2, 3), E(3, 3)], 3, [E(1, 1), E(2, 3), E(3, 3)], 2),
    ],
)
def test_append(ents, windex, wents, wunstable):
    log = new_log(stable=[E(1, 1), E(2, 2)])
    assert log.append(ents) == windex
    assert log.entries(1) == wents
    assert log.unstable.offset == wunstable


def test_append_below_committed_asserts():
    log = new_log(PREV3)
    log.commit_to(2)
    with pytest.raises(AssertionError):
        log.append([E(2, 4)])
    log.append([E(3, 4)])  # right after the commit point is fine
    assert log.last_term() == 4


LAST_I, LAST_T, COMMIT = 3, 3, 1


@pytest.mark.parametrize(
    "log_term, index, committed, ents, wlast, wcommit",
    [
        # not match: term is different
        (LAST_T - 1, LAST_I, LAST_I, [E(LAST_I + 1, 4)], None, COMMIT),
        # not match: index out of bound
        (LAST_T, LAST_I + 1, LAST_I, [E(LAST_I + 2, 4)], None, COMMIT),
        # match with the last existing entry
        (LAST_T, LAST_I, LAST_I, [], LAST_I, LAST_I),
        # do not increase commit higher than last new index
        (LAST_T, LAST_I, LAST_I + 1, [], LAST_I, LAST_I),
        # commit up to the commit in the message
        (LAST_T, LAST_I, LAST_I - 1, [], LAST_I, LAST_I - 1),
        # commit does not decrease
        (LAST_T, LAST_I, 0, [], LAST_I, COMMIT),
        (0, 0, LAST_I, [], 0, COMMIT),
        (LAST_T, LAST_I, LAST_I, [E(LAST_I + 1, 4)], LAST_I + 1, LAST_I),
        (LAST_T, LAST_I, LAST_I + 1, [E(LAST_I + 1, 4)], LAST_I + 1, LAST_I + 1),
        (LAST_T, LAST_I, LAST_I + 2, [E(LAST_I + 1, 4)], LAST_I + 1, LAST_I + 1),
        (
            LAST_T,
            LAST_I,
            LAST_I + 2,
            [E(LAST_I + 1, 4), E(LAST_I + 2, 4)],
            LAST_I + 2,
            LAST_I + 2,
        ),
        # match with the entry in the middle
        (LAST_T - 1, LAST_I - 1, LAST_I, [E(LAST_I, 4)], LAST_I, LAST_I),
        (LAST_T - 2, LAST_I - 2, LAST_I, [E(LAST_I - 1, 4)], LAST_I - 1, LAST_I - 1),
        (LAST_T - 2, LAST_I - 2, LAST_I, [E(LAST_I - 1, 4), E(LAST_I, 4)], LAST_I, LAST_I),
    ],
)
def test_maybe_append(log_term, index, committed, ents, wlast, wcommit):
    log = new_log(PREV3)
    log.committed = COMMIT
    assert log.maybe_append(index, log_term, committed, ents) == wlast
    assert log.committed == wcommit
    if wlast is not None and ents:
        assert log.slice(log.last_index() - len(ents) + 1, log.last_index() + 1) == ents


def test_maybe_append_keeps_suffix_when_nothing_conflicts():
    log = new_log(PREV3)
    assert log.maybe_append(1, 1, 0, [E(2, 2)]) == 2
    # A delayed, shorter append must not truncate entry 3.
    assert log.last_index() == 3
    assert log.entries(1) == PREV3


def test_maybe_append_conflict_with_committed_entry_asserts():
    log = new_log(PREV3)
    log.committed = COMMIT
    with pytest.raises(AssertionError):
        log.maybe_append(0, 0, LAST_I, [E(1, 4)])
    assert log.entries(1) == PREV3


def test_compaction_side_effects():
    last_index, unstable_index, offset = 100, 75, 50
    s = MemoryStorage()
    for i in range(1, unstable_index + 1):
        s.append([E(i, i)])
    log = RaftLog(s)
    for i in range(unstable_index, last_index):
        log.append([E(i + 1, i + 1)])
    assert log.maybe_commit(last_index, last_index)
    log.applied_to(log.committed)

    s.compact(offset)
    assert log.last_index() == last_index
    for j in range(offset, last_index + 1):
        assert log.term(j) == j
        assert log.match_term(j, j)
    unstable = log.unstable_entries()
    assert len(unstable) == last_index - unstable_index
    assert unstable[0].index == unstable_index + 1

    prev = log.last_index()
    log.append([E(prev + 1, prev + 1)])
    assert log.last_index() == prev + 1
    assert log.entries(log.last_index()) == [E(prev + 1, prev + 1)]


SNAP3 = snap(3, 1)
ENTS456 = [E(4, 1), E(5, 1), E(6, 1)]


@pytest.mark.parametrize(
    "applied, has_next, want",
    [
        (0, True, ENTS456[:2]),
        (3, True, ENTS456[:2]),
        (4, True, ENTS456[1:2]),
        (5, False, []),
    ],
)
def test_next_ents(applied, has_next, want):
    log = new_log(ENTS456, snapshot=SNAP3)
    assert log.maybe_commit(5, 1)
    log.applied_to(applied)
    assert log.has_next_ents() is has_next
    assert log.next_ents() == want


def test_next_ents_respects_size_limit():
    ents = [E(i, 1, b"x" * 10) for i in range(1, 6)]
    log = new_log(ents, max_next_ents_size=2 * ents[0].size())
    log.commit_to(5)
    assert log.next_ents() == ents[:2]
    log.applied_to(2)
    assert log.next_ents() == ents[2:4]
    log.applied_to(4)
    assert log.next_ents() == ents[4:]


def test_next_ents_spans_storage_and_unstable():
    log = new_log([E(3, 1), E(4, 1)], stable=[E(1, 1), E(2, 1)])
    log.commit_to(3)
    assert log.next_ents() == [E(1, 1), E(2, 1), E(3, 1)]


@pytest.mark.parametrize(
    "n_stable, want",
    [
        (2, []),  # everything already in storage
        (0, [E(1, 1), E(2, 2)]),
    ],
)
def test_unstable_entries(n_stable, want):
    prev = [E(1, 1), E(2, 2)]
    log = new_log(prev[n_stable:], stable=prev[:n_stable])
    assert log.unstable_entries() == want
    if want:
        log.stable_to(want[-1].index, want[-1].term)
    assert log.unstable_entries() == []
    assert log.unstable.offset == 3


def test_unstable_entries_is_a_copy():
    log = new_log([E(1, 1)])
    log.unstable_entries().append(E(2, 1))
    assert log.last_index() == 1


@pytest.mark.parametrize(
    "commit, want",
    [
        (3, 3),
        (1, 2),  # never decreases
    ],
)
def test_commit_to(commit, want):
    log = new_log(PREV3)
    log.committed = 2
    log.commit_to(commit)
    assert log.committed == want


def test_commit_to_beyond_last_index_asserts():
    log = new_log(PREV3)
    with pytest.raises(AssertionError):
        log.commit_to(4)
    assert log.committed == 0


@pytest.mark.parametrize(
    "index, term, want, wcommit",
    [
        (3, 3, True, 3),
        (2, 2, True, 2),
        (3, 2, False, 1),  # only an entry of the given term commits (§5.4.2)
        (1, 1, False, 1),  # not above the current commit
        (9, 3, False, 1),  # beyond the log: term 0
    ],
)
def test_maybe_commit(index, term, want, wcommit):
    log = new_log(PREV3)
    log.commit_to(1)
    assert log.maybe_commit(index, term) is want
    assert log.committed == wcommit


@pytest.mark.parametrize(
    "stable_i, stable_t, wunstable",
    [
        (1, 1, 2),
        (2, 2, 3),
        (2, 1, 1),  # bad term
        (3, 1, 1),  # bad index
    ],
)
def test_stable_to(stable_i, stable_t, wunstable):
    log = new_log([E(1, 1), E(2, 2)])
    log.stable_to(stable_i, stable_t)
    assert log.unstable.offset == wunstable


SNAP_I, SNAP_T = 5, 2


@pytest.mark.parametrize(
    "stable_i, stable_t, new_ents, wunstable",
    [
        (SNAP_I + 1, SNAP_T, [], SNAP_I + 1),
        (SNAP_I, SNAP_T, [], SNAP_I + 1),
        (SNAP_I - 1, SNAP_T, [], SNAP_I + 1),
        (SNAP_I + 1, SNAP_T + 1, [], SNAP_I + 1),
        (SNAP_I, SNAP_T + 1, [], SNAP_I + 1),
        (SNAP_I - 1, SNAP_T + 1, [], SNAP_I + 1),
        (SNAP_I + 1, SNAP_T, [E(SNAP_I + 1, SNAP_T)], SNAP_I + 2),
        (SNAP_I, SNAP_T, [E(SNAP_I + 1, SNAP_T)], SNAP_I + 1),
        (SNAP_I - 1, SNAP_T, [E(SNAP_I + 1, SNAP_T)], SNAP_I + 1),
        (SNAP_I + 1, SNAP_T + 1, [E(SNAP_I + 1, SNAP_T)], SNAP_I + 1),
        (SNAP_I, SNAP_T + 1, [E(SNAP_I + 1, SNAP_T)], SNAP_I + 1),
        (SNAP_I - 1, SNAP_T + 1, [E(SNAP_I + 1, SNAP_T)], SNAP_I + 1),
    ],
)
def test_stable_to_with_snapshot(stable_i, stable_t, new_ents, wunstable):
    log = new_log(new_ents, snapshot=snap(SNAP_I, SNAP_T))
    log.stable_to(stable_i, stable_t)
    assert log.unstable.offset == wunstable


@pytest.mark.parametrize(
    "compact, wleft, ok",
    [
        ([101], [None], False),  # out of upper bound
        ([30, 50, 80, 90], [70, 50, 20, 10], True),
        ([30, 29], [70, None], False),  # out of lower bound
    ],
)
def test_compaction(compact, wleft, ok):
    last_index = 100
    s = MemoryStorage()
    s.append([E(i, 0) for i in range(1, last_index + 1)])
    log = RaftLog(s)
    log.commit_to(last_index)
    log.applied_to(log.committed)
    errors = 0
    for c, left in zip(compact, wleft, strict=True):
        try:
            s.compact(c)
        except (Compacted, Unavailable):
            errors += 1
            continue
        assert len(log.all_entries()) == left
        assert log.first_index() == c + 1
    assert (errors == 0) is ok


def test_log_over_snapshot_storage():
    index = term = 1000
    log = new_log(snapshot=snap(index, term))
    assert log.all_entries() == []
    assert log.first_index() == index + 1
    assert log.committed == index
    assert log.applied == index
    assert log.unstable.offset == index + 1
    assert log.term(index) == term
    assert log.last_term() == term
    assert log.snapshot() == snap(index, term)


def test_restore():
    log = new_log([E(i, 1) for i in range(1, 6)])
    log.commit_to(2)
    s = snap(10, 3)
    log.restore(s)
    assert log.committed == 10
    assert log.applied == 0  # the application applies the snapshot via Ready
    assert (log.first_index(), log.last_index()) == (11, 10)
    assert log.term(10) == 3
    assert log.term(5) == 0
    assert log.has_pending_snapshot()
    assert log.snapshot() == s
    assert log.all_entries() == []
    assert not log.has_next_ents()
    log.stable_snap_to(10)
    assert not log.has_pending_snapshot()


def test_pending_snapshot_is_not_empty():
    log = new_log()
    assert not log.has_pending_snapshot()
    log.unstable.snapshot = Snapshot()
    assert not log.has_pending_snapshot()


OFF, NUM = 100, 100
FIRST = OFF + 1


@pytest.mark.parametrize(
    "lo, hi, err",
    [
        (FIRST - 2, FIRST + 1, Compacted),
        (FIRST - 1, FIRST + 1, Compacted),
        (FIRST, FIRST, None),
        (FIRST + NUM // 2, FIRST + NUM // 2, None),
        (FIRST + NUM - 1, FIRST + NUM - 1, None),
        (FIRST + NUM, FIRST + NUM, None),
        (FIRST + NUM, FIRST + NUM + 1, AssertionError),
        (FIRST + NUM + 1, FIRST + NUM + 1, AssertionError),
        (FIRST + 1, FIRST, AssertionError),  # lo > hi
    ],
)
def test_slice_bounds(lo, hi, err):
    log = new_log([E(OFF + i, 0) for i in range(1, NUM + 1)], snapshot=snap(OFF, 0))
    if err:
        with pytest.raises(err):
            log.slice(lo, hi)
    else:
        assert log.slice(lo, hi) == []


@pytest.mark.parametrize(
    "index, want",
    [
        (OFF - 1, 0),
        (OFF, 1),
        (OFF + NUM // 2, NUM // 2),
        (OFF + NUM - 1, NUM - 1),
        (OFF + NUM, 0),
    ],
)
def test_term(index, want):
    log = new_log([E(OFF + i, i) for i in range(1, NUM)], snapshot=snap(OFF, 1))
    assert log.term(index) == want


@pytest.mark.parametrize(
    "index, want",
    [
        (100, 0),  # cannot get term from storage
        (101, 0),  # nor from the gap between storage and the unstable snapshot
        (104, 0),
        (105, 1),  # from the unstable snapshot
    ],
)
def test_term_with_unstable_snapshot(index, want):
    log = new_log(snapshot=snap(100, 1))
    log.restore(snap(105, 1))
    assert log.term(index) == want


def test_term_of_entries_compacted_after_log_creation():
    s = MemoryStorage()
    s.append([E(1, 1), E(2, 1), E(3, 2)])
    log = RaftLog(s)
    s.compact(2)
    assert log.term(1) == 0  # storage raises Compacted; the log answers 0
    assert log.term(2) == 1
    assert log.term(3) == 2


HALF = OFF + NUM // 2
LAST = OFF + NUM
SZ = E(HALF, HALF).size()


@pytest.mark.parametrize(
    "lo, hi, limit, want",
    [
        # no limit
        (HALF - 1, HALF + 1, NO_LIMIT, [E(HALF - 1, HALF - 1), E(HALF, HALF)]),
        (HALF, HALF + 1, NO_LIMIT, [E(HALF, HALF)]),
        (LAST - 1, LAST, NO_LIMIT, [E(LAST - 1, LAST - 1)]),
        (OFF + 1, OFF + 2, NO_LIMIT, [E(OFF + 1, OFF + 1)]),
        # limits
        (HALF - 1, HALF + 1, 0, [E(HALF - 1, HALF - 1)]),
        (HALF - 1, HALF + 1, SZ + 1, [E(HALF - 1, HALF - 1)]),
        (HALF - 2, HALF + 1, SZ + 1, [E(HALF - 2, HALF - 2)]),
        (HALF - 1, HALF + 1, SZ * 2, [E(HALF - 1, HALF - 1), E(HALF, HALF)]),
        (
            HALF - 1,
            HALF + 2,
            SZ * 3,
            [E(HALF - 1, HALF - 1), E(HALF, HALF), E(HALF + 1, HALF + 1)],
        ),
        (HALF, HALF + 2, SZ, [E(HALF, HALF)]),
        (HALF, HALF + 2, SZ * 2, [E(HALF, HALF), E(HALF + 1, HALF + 1)]),
    ],
)
def test_slice(lo, hi, limit, want):
    # Entries OFF+1 .. HALF-1 are in storage, HALF .. LAST-1 are unstable.
    log = new_log(
        [E(OFF + i, OFF + i) for i in range(NUM // 2, NUM)],
        snapshot=snap(OFF, 0),
        stable=[E(OFF + i, OFF + i) for i in range(1, NUM // 2)],
    )
    assert log.unstable.offset == HALF
    assert log.slice(lo, hi, limit) == want


def test_slice_compacted_and_beyond():
    log = new_log([E(OFF + 1, 1)], snapshot=snap(OFF, 0))
    with pytest.raises(Compacted):
        log.slice(OFF, OFF + 1)
    with pytest.raises(Compacted):
        log.entries(OFF)
    with pytest.raises(AssertionError):
        log.slice(LAST, LAST + 1)
    assert log.entries(OFF + 2) == []


@pytest.mark.parametrize("applied", [0, 2, 3])
def test_applied_to(applied):
    log = new_log(PREV3)
    log.commit_to(3)
    log.applied_to(2)
    if applied:
        log.applied_to(applied)
    assert log.applied == (applied or 2)  # 0 is a no-op


@pytest.mark.parametrize("applied", [1, 4])
def test_applied_to_out_of_range_asserts(applied):
    log = new_log(PREV3)
    log.commit_to(3)
    log.applied_to(2)
    with pytest.raises(AssertionError):
        log.applied_to(applied)  # below applied, or beyond committed
    assert log.applied == 2


def test_repr():
    log = new_log(PREV3)
    log.commit_to(2)
    assert repr(log) == "RaftLog(committed=2, applied=0, unstable.offset=1, len(unstable)=3)"


class FlakyStorage(MemoryStorage):
    """A storage that lost track of its entries (term() raises)."""

    def __init__(self, err):
        super().__init__()
        self.err = err

    def term(self, i):
        if i > 0:
            raise self.err("gone")
        return super().term(i)


@pytest.mark.parametrize("err", [Compacted, Unavailable])
def test_term_is_zero_when_storage_cannot_answer(err):
    s = FlakyStorage(err)
    s.append([E(1, 1), E(2, 1)])
    log = RaftLog(s)
    assert log.term(2) == 0
    assert not log.match_term(2, 1)
    assert log.term(0) == 0
