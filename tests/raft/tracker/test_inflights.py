"""Inflights: the bounded window of in-flight appends."""

import pytest

from multiraft.raft.tracker.inflights import Inflights


def filled(size, *indexes):
    ins = Inflights(size)
    for i in indexes:
        ins.add(i)
    return ins


def test_add_until_full():
    ins = Inflights(3)
    for n, i in enumerate([1, 2, 3], 1):
        assert not ins.full()
        ins.add(i)
        assert ins.count() == n
    assert ins.full()
    with pytest.raises(AssertionError):
        ins.add(4)
    assert ins.count() == 3


@pytest.mark.parametrize(
    "to, wcount",
    [
        (0, 5),  # below the first one: nothing freed
        (1, 4),
        (4, 3),  # frees 1 and 3, not the 5
        (5, 2),
        (9, 0),
        (100, 0),
    ],
)
def test_free_le(to, wcount):
    ins = filled(10, 1, 3, 5, 7, 9)
    ins.free_le(to)
    assert ins.count() == wcount


def test_free_le_then_add_reuses_room():
    ins = filled(3, 1, 2, 3)
    ins.free_le(2)
    assert not ins.full()
    ins.add(4)
    ins.add(5)
    assert ins.full()
    ins.free_le(4)
    assert ins.count() == 1
    ins.free_le(5)
    assert ins.count() == 0


def test_free_first_one():
    ins = filled(3, 4, 6, 8)
    ins.free_first_one()
    assert ins.count() == 2
    ins.free_le(5)  # 4 is already gone; 6 stays
    assert ins.count() == 2
    ins.free_first_one()
    ins.free_first_one()
    assert ins.count() == 0
    ins.free_first_one()  # on empty: no-op
    assert ins.count() == 0


def test_reset():
    ins = filled(2, 1, 2)
    ins.reset()
    assert ins.count() == 0
    assert not ins.full()
    assert ins.size == 2


def test_size_one():
    ins = Inflights(1)
    ins.add(7)
    assert ins.full()
    ins.free_le(6)
    assert ins.full()
    ins.free_le(7)
    assert not ins.full()
