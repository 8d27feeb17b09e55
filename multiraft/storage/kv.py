"""The state machine's data: user keys in one ordered space (see `keys`),
read with read transactions and written through a `WriteBatch`, and region
snapshots generated from, and ingested into, that space.

Applying committed entries means: the data writes of the entries, and
`PeerStorage.set_applied`, in the same batch, so a restart neither applies
an entry twice nor skips one.

Snapshot data is msgpack ``[descriptor, start, end, [k0, v0, k1, v1, ...],
[c0, s0, c1, s1, ...]]``: user keys and values, then the region's client
sessions (big-endian client id, session): everything a store needs to take
the region over, exactly-once promises included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from multiraft.raft.types import Snapshot, SnapshotMetadata

from . import keys
from .engine import Engine, WriteBatch
from .errors import StorageError
from .states import ApplyState, RegionState, entry_term, pack, unpack

if TYPE_CHECKING:
    from .peer_storage import PeerStorage


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


def generate_snapshot(engine: Engine, region_id: int) -> Snapshot:
    """The region's data at its applied index, from one read transaction, so
    data, applied index, its term and the membership agree."""
    with engine.read() as txn:
        region_value = txn.get(keys.region_state_key(region_id))
        apply_value = txn.get(keys.apply_state_key(region_id))
        if region_value is None or apply_value is None:
            raise StorageError(f"region {region_id}: no state to snapshot")
        region = RegionState.decode(region_value)
        apply = ApplyState.decode(apply_value)
        term = _term_at(txn, region_id, apply)
        lo, hi = keys.data_range(region.start, region.end)
        flat = _flat_range(txn, lo, hi, 1)
        prefix = keys.session_prefix(region_id)
        sessions = _flat_range(txn, prefix, _prefix_end(prefix), len(prefix))
    data = pack((region.descriptor, region.start, region.end, flat, sessions))
    return Snapshot(data, SnapshotMetadata(region.conf_state, apply.applied_index, term))


def _flat_range(txn: object, lo: bytes, hi: bytes, strip: int) -> list[bytes]:
    """[k0, v0, k1, v1, ...] of the keys in [lo, hi), each without its first
    `strip` bytes."""
    flat: list[bytes] = []
    cur = txn.cursor()  # type: ignore[attr-defined]
    if cur.set_range(lo):
        for k, v in cur:
            if k >= hi:
                break
            flat.append(k[strip:])
            flat.append(v)
    return flat


def _prefix_end(prefix: bytes) -> bytes:
    """The first key after every key starting with `prefix` (no 0xff bytes here)."""
    return prefix[:-1] + bytes((prefix[-1] + 1,))


def _term_at(txn: object, region_id: int, apply: ApplyState) -> int:
    if apply.applied_index == apply.truncated_index:
        return apply.truncated_term
    value = txn.get(keys.raft_log_key(region_id, apply.applied_index))  # type: ignore[attr-defined]
    if value is None:
        raise StorageError(f"region {region_id}: applied entry {apply.applied_index} not in log")
    return entry_term(value)


def ingest_snapshot(batch: WriteBatch, storage: PeerStorage, snapshot: Snapshot) -> None:
    """Replace the region's data range, state and log with `snapshot`, all
    in `batch` (so atomically)."""
    descriptor, start, end, flat, sessions = unpack(snapshot.data)
    region = RegionState(descriptor, start, end, snapshot.metadata.conf_state)
    storage.apply_snapshot(batch, snapshot, region)
    delete_range(batch, start, end)
    z = keys.DATA_PREFIX
    batch.put_many([(z + flat[i], flat[i + 1]) for i in range(0, len(flat), 2)])
    prefix = keys.session_prefix(storage.region_id)
    batch.delete_range(prefix, _prefix_end(prefix))
    batch.put_many([(prefix + sessions[i], sessions[i + 1]) for i in range(0, len(sessions), 2)])
