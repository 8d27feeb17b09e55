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


def delete_range(batch: WriteBatch, start: bytes, end: bytes) -> None:
    """Delete the data of user keys [start, end) (end b"": no bound)."""
    batch.delete_range(*keys.data_range(start, end))


CLEAR_KEYS_PER_TXN = 20_000
"""Keys per transaction when a whole range is cleared: a write transaction
keeps its dirty pages in memory, so a big range goes in several."""


def clear_range(engine: Engine, start: bytes, end: bytes) -> None:
    """Delete the data of user keys [start, end) in bounded transactions
    (for data no region of this store owns any more)."""
    lo, hi = keys.data_range(start, end)
    while engine.delete_some(lo, hi, CLEAR_KEYS_PER_TXN):
        pass
