"""RegionRouter: which region owns a key, who leads it, where each store
listens. The client's route cache and every store's region directory are
both one of these.

Regions are kept sorted by start key in two parallel lists so a lookup is one
bisect. Descriptors arrive from many places (directory replies, error
details) and some are stale: an update is refused when the cache already
holds something newer for an overlapping range, and otherwise replaces every
region it overlaps, so the cached ranges never overlap.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from .region import Region


class RegionRouter:
    """Sorted, non-overlapping regions + leader hints + store addresses."""

    def __init__(self) -> None:
        self._starts: list[bytes] = []
        self._regions: list[Region] = []
        self._by_id: dict[int, Region] = {}
        self._leaders: dict[int, int] = {}
        self.stores: dict[int, str] = {}
        """store id -> "host:port"."""

    def __len__(self) -> int:
        return len(self._regions)

    def regions(self) -> list[Region]:
        """Every cached region, in key order."""
        return list(self._regions)

    def lookup(self, key: bytes) -> Region | None:
        """The cached region whose range holds `key`, if any (O(log n))."""
        i = bisect_right(self._starts, key) - 1
        if i >= 0 and self._regions[i].contains(key):
            return self._regions[i]
        return None

    def get(self, region_id: int) -> Region | None:
        return self._by_id.get(region_id)

    def overlapping(self, start: bytes, end: bytes) -> list[Region]:
        """The cached regions overlapping [start, end) (O(log n) to find)."""
        lo, hi = self._overlap(start, end)
        return self._regions[lo:hi]

    def left_neighbor(self, region: Region) -> Region | None:
        """The cached region that ends exactly where `region` starts."""
        i = bisect_left(self._starts, region.start) - 1
        if i >= 0 and self._regions[i].end == region.start:
            return self._regions[i]
        return None

    def leader_of(self, region_id: int) -> int | None:
        return self._leaders.get(region_id)

    def set_leader(self, region_id: int, store_id: int | None) -> None:
        """Remember (or forget, with None) which store leads a region."""
        if store_id is None:
            self._leaders.pop(region_id, None)
        elif region_id in self._by_id:
            self._leaders[region_id] = store_id

    def update(self, region: Region) -> bool:
        """Insert `region` unless something newer overlaps it; returns whether
        it was inserted. Replaced regions lose their leader hints, except a
        region replaced by a newer descriptor of itself."""
        if self._is_stale(region):
            return False
        old = self._by_id.get(region.id)
        if old is not None:
            self._remove_at(self._index_of(old), keep_leader=True)
        lo, hi = self._overlap(region.start, region.end)
        for i in range(hi - 1, lo - 1, -1):
            self._remove_at(i, keep_leader=False)
        self._starts.insert(lo, region.start)
        self._regions.insert(lo, region)
        self._by_id[region.id] = region
        return True

    def remove(self, region_id: int) -> None:
        """Forget a region (its descriptor proved wrong); a lookup then misses
        and the client refreshes its routes."""
        old = self._by_id.get(region_id)
        if old is not None:
            self._remove_at(self._index_of(old), keep_leader=False)

    def clear(self) -> None:
        self._starts.clear()
        self._regions.clear()
        self._by_id.clear()
        self._leaders.clear()

    def _is_stale(self, region: Region) -> bool:
        """Same id with a newer epoch, or an overlapping range that was split
        more recently (a higher epoch version), means `region` is old news."""
        old = self._by_id.get(region.id)
        if old is not None and old.is_newer_than(region):
            return True
        lo, hi = self._overlap(region.start, region.end)
        return any(
            r.id != region.id and r.epoch.version > region.epoch.version
            for r in self._regions[lo:hi]
        )

    def _overlap(self, start: bytes, end: bytes) -> tuple[int, int]:
        """Indices [lo, hi) of the cached regions overlapping [start, end)."""
        lo = bisect_right(self._starts, start) - 1
        if lo < 0:
            lo = 0
        elif self._regions[lo].end and self._regions[lo].end <= start:
            lo += 1
        hi = len(self._regions) if not end else bisect_left(self._starts, end)
        return lo, max(lo, hi)

    def _index_of(self, region: Region) -> int:
        return bisect_left(self._starts, region.start)

    def _remove_at(self, i: int, *, keep_leader: bool) -> None:
        region = self._regions.pop(i)
        del self._starts[i]
        del self._by_id[region.id]
        if not keep_leader:
            self._leaders.pop(region.id, None)
