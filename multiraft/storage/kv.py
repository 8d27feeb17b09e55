"""The state machine's data: user keys in one ordered space (see `keys`),
read with read transactions and written through a `WriteBatch` (region
snapshots of that space: `snapshot` and `ingest`).

Applying committed entries means: the data writes of the entries, and
`PeerStorage.set_applied`, in the same batch, so a restart neither applies
an entry twice nor skips one.
"""

from __future__ import annotations

from . import keys
from .engine import Engine, WriteBatch


def get(engine: Engine, key: bytes) -> bytes | None:
    return engine.get(keys.DATA_PREFIX + key)


def scan(
    engine: Engine, start: bytes, end: bytes, limit: int | None = None
) -> list[tuple[bytes, bytes]]:
    """Pairs with start <= key < end (end b"": no bound), in key order."""
    lo, hi = keys.data_range(start, end)
    out: list[tuple[bytes, bytes]] = []
    if limit is not None and limit <= 0:
        return out
    with engine.read() as txn:
        cur = txn.cursor()
        if not cur.set_range(lo):
            return out
        for k, v in cur:
            if k >= hi:
                break
            out.append((k[1:], v))
            if len(out) == limit:
                break
    return out


def put(batch: WriteBatch, key: bytes, value: bytes) -> None:
    batch.put(keys.DATA_PREFIX + key, value)


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
