"""A region's first state and the tombstone a removed replica leaves."""

from __future__ import annotations

from pathlib import Path

import msgpack

from multiraft.protocol.region import Epoch, PeerMeta, Region
from multiraft.storage import keys, kv
from multiraft.storage.engine import Engine
from multiraft.storage.peer_storage import PeerStorage
from multiraft.store.region_state import bootstrap_region, destroy_region, is_tombstoned

REGION = Region(7, b"a", b"m", Epoch(3, 5), (PeerMeta(1, 10), PeerMeta(2, 20), PeerMeta(3, 30)))


def test_destroy_deletes_the_replica_and_leaves_a_tombstone(tmp_path: Path) -> None:
    engine = Engine.open(str(tmp_path), store_id=1, cluster_id=9, sync=False)
    try:
        storage = PeerStorage(engine, REGION.id)
        batch = engine.batch()
        bootstrap_region(batch, storage, REGION)
        kv.put(batch, b"b", b"inside")
        kv.put(batch, b"z", b"outside")
        batch.commit()
        batch = engine.batch()
        destroy_region(batch, storage, 6, 20)
        batch.commit()
        assert kv.get(engine, b"b") == b"inside"  # cleared after, in bounded transactions
        kv.RangeClear(engine, REGION.start, REGION.end).finish()
        assert kv.get(engine, b"b") is None
        assert kv.get(engine, b"z") == b"outside"
        with engine.read() as txn:
            left = [k for k, _ in txn.cursor() if k.startswith(keys.region_prefix(REGION.id))]
        assert left == [keys.tombstone_key(REGION.id)]
        assert msgpack.unpackb(engine.get(keys.tombstone_key(REGION.id))) == [6, 20]
        assert is_tombstoned(engine, REGION, 20)  # the removed peer itself
        assert is_tombstoned(engine, REGION.with_epoch(conf_ver=6), 21)  # an old membership
        assert not is_tombstoned(engine, REGION.with_epoch(conf_ver=8), 21)  # re-added later
    finally:
        engine.close()
