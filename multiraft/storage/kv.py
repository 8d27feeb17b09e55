"""The state machine's data: user keys in one ordered space (see `keys`),
read with read transactions and written through a `WriteBatch` (region
snapshots of that space: `snapshot` and `ingest`).

Applied data is written together with `PeerStorage.set_applied` in one
batch, so a restart neither applies an entry twice nor skips one (the
store buffers both between batches: `store.apply_buffer`).
"""

from __future__ import annotations

from collections.abc import Iterator

from . import keys
from .engine import Engine, Txn, WriteBatch


def get(engine: Engine, key: bytes) -> bytes | None:
    return engine.get(keys.DATA_PREFIX + key)


def scan(
    engine: Engine, start: bytes, end: bytes, limit: int | None = None
) -> list[tuple[bytes, bytes]]:
    """Pairs with start <= key < end (end b"": no bound), in key order."""
    out: list[tuple[bytes, bytes]] = []
    if limit is not None and limit <= 0:
        return out
    with engine.read() as txn:
        for pair in iterate(txn, start, end):
            out.append(pair)
            if len(out) == limit:
                break
    return out


def iterate(txn: Txn, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Pairs with start <= key < end (end b"": no bound) in `txn`, in key order."""
    lo, hi = keys.data_range(start, end)
    cur = txn.cursor()
    if not cur.set_range(lo):
        return
    for k, v in cur:
        if k >= hi:
            return
        yield k[1:], v


def put(batch: WriteBatch, key: bytes, value: bytes) -> None:
    batch.put(keys.DATA_PREFIX + key, value)


def put_many(batch: WriteBatch, pairs: list[tuple[bytes, bytes]]) -> None:
    """User keys and values, in one run (sorted keys write fastest)."""
    prefix = keys.DATA_PREFIX
    batch.put_many([(prefix + k, v) for k, v in pairs])


def delete(batch: WriteBatch, key: bytes) -> None:
    batch.delete(keys.DATA_PREFIX + key)


CLEAR_KEYS_PER_TXN = 20_000
"""Keys per transaction when a whole range is cleared: a write transaction
keeps its dirty pages in memory, so a big range goes in several."""


class RangeClear:
    """Deletes the data of user keys [start, end) (data no region of this
    store owns any more) a few bounded transactions at a time, so a store
    loop never stalls on a big range."""

    def __init__(self, engine: Engine, start: bytes, end: bytes) -> None:
        self.engine = engine
        self.start, self.end = start, end
        self._lo, self._hi = keys.data_range(start, end)

    def overlaps(self, start: bytes, end: bytes) -> bool:
        return (not self.end or start < self.end) and (not end or self.start < end)

    def step(self, transactions: int) -> bool:
        """Up to `transactions` deletions; returns whether keys remain."""
        for _ in range(transactions):
            if not self.engine.delete_some(self._lo, self._hi, CLEAR_KEYS_PER_TXN):
                return False
        return True

    def finish(self) -> None:
        while self.step(1):
            pass
