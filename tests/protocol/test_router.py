"""RegionRouter: lookups by bisect, newer-epoch-wins updates, no overlaps."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from multiraft.protocol.region import Epoch, Region
from multiraft.protocol.router import RegionRouter


def r(rid: int, start: bytes, end: bytes, version: int = 1, conf_ver: int = 1) -> Region:
    return Region(rid, start, end, Epoch(version, conf_ver))


def check_invariants(cache: RegionRouter) -> None:
    regions = cache.regions()
    for a, b in itertools.pairwise(regions):
        assert a.start < b.start
        assert a.end and a.end <= b.start, f"{a} overlaps {b}"
    assert len({x.id for x in regions}) == len(regions)
    for x in regions:
        assert cache.get(x.id) is x


def linear_lookup(cache: RegionRouter, key: bytes) -> Region | None:
    return next((x for x in cache.regions() if x.contains(key)), None)


def test_lookup_empty_and_single() -> None:
    cache = RegionRouter()
    assert cache.lookup(b"a") is None
    whole = r(1, b"", b"")
    assert cache.update(whole)
    assert cache.lookup(b"") is whole
    assert cache.lookup(b"\xff" * 10) is whole


def test_split_replaces_parent_and_keeps_left_leader() -> None:
    cache = RegionRouter()
    cache.update(r(1, b"", b""))
    cache.set_leader(1, 7)
    left, right = r(1, b"", b"m", 2), r(2, b"m", b"", 2)
    assert cache.update(right)
    assert cache.lookup(b"a") is None  # parent dropped: it overlapped right
    assert cache.update(left)
    assert cache.lookup(b"a") is left
    assert cache.lookup(b"m") is right
    assert cache.left_neighbor(right) is left
    assert cache.leader_of(1) is None  # parent evicted by an overlap
    cache.set_leader(1, 7)
    assert cache.update(r(1, b"", b"m", 2, 2))  # conf change of itself keeps the hint
    assert cache.leader_of(1) == 7


def test_stale_descriptor_is_refused() -> None:
    cache = RegionRouter()
    cache.update(r(1, b"", b"m", 2))
    cache.update(r(2, b"m", b"", 2))
    assert not cache.update(r(1, b"", b"", 1))  # same id, older epoch
    assert not cache.update(r(3, b"k", b"p", 1))  # overlaps newer splits
    assert [x.id for x in cache.regions()] == [1, 2]
    assert cache.update(r(1, b"", b"m", 2))  # equal epoch: replaced, harmless


def test_remove_and_clear() -> None:
    cache = RegionRouter()
    cache.update(r(1, b"", b"m"))
    cache.update(r(2, b"m", b""))
    cache.set_leader(2, 1)
    cache.remove(2)
    assert cache.lookup(b"z") is None
    assert cache.leader_of(2) is None
    cache.set_leader(2, 1)  # unknown region: ignored
    assert cache.leader_of(2) is None
    cache.clear()
    assert len(cache) == 0


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Region], list[Region]]:
    """A random sequence of splits and membership changes from one region:
    every descriptor that ever existed, and the current ones."""
    current = {1: r(1, b"", b"")}
    history = [current[1]]
    next_id = 2
    for _ in range(draw(st.integers(0, 25))):
        rid = draw(st.sampled_from(sorted(current)))
        reg = current[rid]
        if draw(st.booleans()):
            reg = reg.with_epoch(conf_ver=reg.epoch.conf_ver + 1)
            current[rid] = reg
            history.append(reg)
            continue
        key = draw(st.binary(min_size=1, max_size=3))
        if not (reg.start < key and (not reg.end or key < reg.end)):
            continue
        v = reg.epoch.version + 1
        left = Region(rid, reg.start, key, Epoch(v, reg.epoch.conf_ver))
        right = Region(next_id, key, reg.end, Epoch(v, 1))
        current[rid], current[next_id] = left, right
        history += [left, right]
        next_id += 1
    return history, list(current.values())


@settings(max_examples=200, deadline=None)
@given(histories(), st.randoms(use_true_random=False), st.lists(st.binary(max_size=3), max_size=20))
def test_random_updates_keep_ranges_sorted_and_disjoint(h, rnd, probes) -> None:
    history, current = h
    cache = RegionRouter()
    feed = rnd.sample(history, rnd.randint(0, len(history)))
    for reg in feed:
        cache.update(reg)
        check_invariants(cache)
        for key in probes:
            assert cache.lookup(key) == linear_lookup(cache, key)
    for reg in rnd.sample(current, len(current)):
        cache.update(reg)
        check_invariants(cache)
    assert sorted(cache.regions(), key=lambda x: x.start) == sorted(current, key=lambda x: x.start)
    for key in probes:
        assert cache.lookup(key) == linear_lookup(cache, key)
        assert cache.lookup(key) is not None
