"""Size-based split checking: when a region grows past the thresholds, its
leader proposes a split at the key that halves it.

Every replica keeps an approximate size, bumped as writes apply (overwrites
and deletes make it drift, which is why it is only approximate). When the
approximation crosses a threshold, the leader scans the region's range once
for the exact size and the middle key; the scan also resets the estimate, so
a region is not scanned again until it has grown.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from ..protocol.region import Region
from ..storage import keys
from ..storage.engine import Engine


@dataclass(slots=True)
class SplitPolicy:
    max_bytes: int = 96 << 20
    """Split a region holding more than this many bytes of keys and values..."""
    max_keys: int = 1_000_000
    """...or more than this many keys."""

    def exceeded(self, size: int, count: int) -> bool:
        return size > self.max_bytes or count > self.max_keys


@dataclass(slots=True)
class RegionSize:
    """A region's estimated size; `known` is False until the first scan."""

    bytes: int = 0
    keys: int = 0
    known: bool = False

    def grow(self, key: builtins.bytes, value: builtins.bytes | None) -> None:
        if value is None:
            self.keys = max(0, self.keys - 1)
        else:
            self.bytes += len(key) + len(value)
            self.keys += 1


def measure(engine: Engine, region: Region, policy: SplitPolicy) -> tuple[RegionSize, bytes | None]:
    """The region's exact size, and the key to split it at if it is too big
    (the first key at or past half of its bytes, never its start key)."""
    lo, hi = keys.data_range(region.start, region.end)
    sizes: list[tuple[bytes, int]] = []
    total = 0
    with engine.read() as txn:
        cur = txn.cursor()
        if cur.set_range(lo):
            for k, v in cur:
                if k >= hi:
                    break
                total += len(k) - 1 + len(v)
                sizes.append((k, total))
    size = RegionSize(total, len(sizes), known=True)
    if not policy.exceeded(size.bytes, size.keys) or len(sizes) < 2:
        return size, None
    if size.keys > policy.max_keys and size.bytes <= policy.max_bytes:
        split_at = sizes[len(sizes) // 2][0]
    else:
        split_at = next(k for k, running in sizes[1:] if running >= total // 2)
    return size, keys.user_key(split_at)
