"""StoreContext: what the store's capabilities work with. They take this,
never the `Store`, so each can be read and tested on its own."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol.router import RegionRouter
from ..security.trust import TrustTable
from ..storage import kv
from ..storage.engine import Engine
from .apply_buffer import ApplyBuffer
from .config import StoreConfig
from .meta import StoreMeta
from .metrics import StoreMetrics
from .outbox import Outbox
from .peer import Peer
from .stores import StoreBook


@dataclass
class StoreContext:
    config: StoreConfig
    engine: Engine
    meta: StoreMeta
    """The cluster's id, the store list's durable copy, the id allocator."""
    book: StoreBook
    """The cluster's stores: addresses, liveness, their gossiped statistics."""
    outbox: Outbox
    peers: dict[int, Peer] = field(default_factory=dict)
    """This store's replicas, by region id."""
    router: RegionRouter = field(default_factory=RegionRouter)
    """Every region this store knows of (its own and gossiped), with leader
    hints: it answers clients' directory requests and routing errors."""
    ranges: RegionRouter = field(default_factory=RegionRouter)
    """The ranges of this store's own replicas, as they are here (a replica
    may lag its region elsewhere): what a new replica must not overlap."""
    now: float = 0.0
    """The clock reading of the current turn (seconds, monotonic)."""
    active: set[int] = field(default_factory=set)
    """Regions that got input since the last turn: the turn visits only these."""
    awake: set[int] = field(default_factory=set)
    """Regions whose replica here is ticked (the others are quiet)."""
    leaders: set[int] = field(default_factory=set)
    """Regions whose replica here leads (as of its last Ready)."""
    clears: list[kv.RangeClear] = field(default_factory=list)
    """Data of removed replicas, deleted a few transactions per turn."""
    trust: TrustTable | None = None
    """Secure stores: every trusted key and its role (replicated by gossip)."""
    applied: ApplyBuffer = field(init=False)
    """Applied writes not yet in LMDB; reads look here first."""

    def __post_init__(self) -> None:
        cfg = self.config
        self.applied = ApplyBuffer(self.engine, cfg.apply_flush_interval, cfg.apply_flush_bytes)

    @property
    def metrics(self) -> StoreMetrics:
        return self.outbox.metrics

    @property
    def store_id(self) -> int:
        return self.meta.store_id

    @property
    def cluster_id(self) -> int:
        return self.meta.cluster_id

    def touch(self, peer: Peer) -> None:
        """`peer` got input: the next turn looks at it."""
        self.active.add(peer.region.id)
