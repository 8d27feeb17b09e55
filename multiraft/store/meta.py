"""The store's own durable state: which cluster it belongs to, where the
other stores listen, the id allocator, and the regions it hosts.

Bootstrap writes all of it in one batch on the first start with
`--initial-cluster`; every later start reads it back from the data dir.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import msgpack

from ..protocol.region import PeerMeta, Region
from ..security.keys import PublicCert
from ..security.trust import TrustTable
from ..storage import keys
from ..storage.engine import Engine, WriteBatch
from ..storage.peer_storage import PeerStorage
from .region_state import bootstrap_region

log = logging.getLogger(__name__)

STORE_META_KEY = b"\x00\x02"
"""msgpack [cluster_id, {store_id: addr}, next_local_id]."""
TRUST_KEY = b"\x00\x03"
"""msgpack of `TrustTable.to_wire()`: the replicated trust table (secure stores)."""
ID_BLOCK = 4096
"""Ids reserved by one durable write (a split of a 3-replica region uses 4)."""
ID_BITS = 32
"""Ids a store allocates are (store_id << ID_BITS) + n: unique cluster-wide
without asking anyone, and never equal to the small ids of bootstrap."""


class StartupError(Exception):
    """The store cannot start (bad flags, foreign data dir, ...)."""


def cluster_id_of(initial_cluster: dict[int, str]) -> int:
    """Every store of a new cluster derives the same id from the same flag."""
    spec = ",".join(f"{i}={a}" for i, a in sorted(initial_cluster.items()))
    return int.from_bytes(hashlib.sha256(spec.encode()).digest()[:8], "big") >> 1


@dataclass
class StoreMeta:
    store_id: int
    cluster_id: int
    stores: dict[int, str]
    next_id: int = 1
    """The first id not reserved yet (durable)."""
    handed: int = 0
    """The next reserved id to hand out (in memory; 0: none reserved)."""

    def write(self, batch: WriteBatch) -> None:
        batch.put(STORE_META_KEY, msgpack.packb([self.cluster_id, self.stores, self.next_id]))

    def alloc_ids(self, engine: Engine, n: int) -> list[int]:
        """n ids no other store will ever hand out. Ids are reserved durably
        ID_BLOCK at a time, so most calls commit nothing; a restart skips
        what was reserved and not handed out."""
        if not self.handed or self.handed + n > self.next_id:
            self.handed = self.next_id
            self.next_id += max(n, ID_BLOCK)
            batch = engine.batch()
            self.write(batch)
            batch.commit()
        first = self.handed
        self.handed += n
        return [(self.store_id << ID_BITS) + first + i for i in range(n)]


def open_data_dir(
    path: str,
    store_id: int,
    initial: dict[int, str] | None,
    replicas: int,
    sync: bool,
    join: Callable[[], tuple[int, dict[int, str]]] | None = None,
) -> tuple[Engine, StoreMeta]:
    """The store's engine and metadata; an empty data dir is bootstrapped
    from `initial` (a new cluster) or from what `join()` gets from a member."""
    engine = Engine(path, sync=sync)
    ident = engine.ident()
    if ident is not None and ident[1] != store_id:
        engine.close()
        raise StartupError(f"{path} belongs to store {ident[1]}, not {store_id}")
    value = engine.get(STORE_META_KEY)
    if value is None:
        engine.close()
        if join is not None and not initial:
            engine = _bootstrap_joined(path, store_id, sync, *join())
        else:
            engine = _bootstrap(path, store_id, initial, replicas, sync)
        value = engine.get(STORE_META_KEY)
    cluster_id, stores, next_id = msgpack.unpackb(value, strict_map_key=False)
    return engine, StoreMeta(store_id, cluster_id, dict(stores), next_id)


def _bootstrap(
    path: str, store_id: int, initial: dict[int, str] | None, replicas: int, sync: bool
) -> Engine:
    """First start: claim the dir, write the stores and region 1, in one batch."""
    if not initial:
        raise StartupError("empty data dir: start with --initial-cluster or --join")
    if store_id not in initial:
        raise StartupError(f"store {store_id} is not in --initial-cluster")
    cluster_id = cluster_id_of(initial)
    engine = Engine.open(path, store_id=store_id, cluster_id=cluster_id, sync=sync)
    voters = sorted(initial)[: max(1, min(replicas, len(initial)))]
    region = Region(1, b"", b"", peers=tuple(PeerMeta(s, s) for s in voters))
    batch = engine.batch()
    StoreMeta(store_id, cluster_id, dict(initial)).write(batch)
    if store_id in voters:
        bootstrap_region(batch, PeerStorage(engine, region.id), region)
    batch.commit()
    log.info("store %d bootstrapped cluster %x with %d stores", store_id, cluster_id, len(initial))
    return engine


def _bootstrap_joined(
    path: str, store_id: int, sync: bool, cluster_id: int, stores: dict[int, str]
) -> Engine:
    """First start of a store that joins: the cluster's id and store list,
    no regions (replicas arrive as the cluster moves them here)."""
    engine = Engine.open(path, store_id=store_id, cluster_id=cluster_id, sync=sync)
    batch = engine.batch()
    StoreMeta(store_id, cluster_id, stores).write(batch)
    batch.commit()
    log.info("store %d joined cluster %x of %d stores", store_id, cluster_id, len(stores))
    return engine


def load_trust(engine: Engine, store_id: int, trusted: list[PublicCert]) -> TrustTable:
    """The trust table as this store last saw it, with the `--trusted` keys."""
    table = TrustTable(store_id)
    value = engine.get(TRUST_KEY)
    if value is not None:
        table.merge(msgpack.unpackb(value))
    table.seed(trusted)
    save_trust(engine, table)
    return table


def save_trust(engine: Engine, table: TrustTable) -> None:
    batch = engine.batch()
    batch.put(TRUST_KEY, msgpack.packb(table.to_wire()))
    batch.commit()


def load_regions(engine: Engine) -> list[tuple[Region, PeerStorage]]:
    """Every region with a replica here, found by jumping from region to region."""
    found = []
    region_id = 0
    while True:
        with engine.read() as txn:
            cur = txn.cursor()
            if not cur.set_range(keys.region_prefix(region_id + 1)):
                break
            k = cur.key()
            if not k.startswith(keys.LOCAL_PREFIX) or len(k) < 9:
                break
            region_id = int.from_bytes(k[1:9], "big")
        storage = PeerStorage(engine, region_id)
        if storage.region.descriptor:
            region = Region.from_wire(msgpack.unpackb(storage.region.descriptor))
            found.append((region, storage))
    return found
