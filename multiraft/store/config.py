"""A store's settings: what `multiraft store start` turns its flags into."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..security.keys import KeyPair, PublicCert
from .snapshot_transfer import TransferConfig
from .split_check import SplitPolicy


@dataclass(slots=True)
class RaftSettings:
    election_tick: int = 10
    heartbeat_tick: int = 2
    max_inflight_msgs: int = 256
    max_size_per_msg: int = 1 << 20


@dataclass(frozen=True)
class SecurityConfig:
    """What `--key` and `--trusted` give a secure store."""

    key: KeyPair
    trusted: list[PublicCert]
    """Keys trusted from the start (the cluster replicates later changes)."""


@dataclass
class StoreConfig:
    store_id: int
    addr: str
    data_dir: str
    initial_cluster: dict[int, str] | None = None
    replicas: int = 3
    tick_interval: float = 0.1
    raft: RaftSettings = field(default_factory=RaftSettings)
    sync: bool = True
    log_gc_threshold: int = 4096
    """Compact a region's log while it holds more than this many applied
    entries (a step per turn)..."""
    log_gc_keep: int = 1024
    """...never discarding the last this many, so a briefly lagging
    follower still catches up from the log; one further behind gets a
    snapshot."""
    split_policy: SplitPolicy = field(default_factory=SplitPolicy)
    join: str | None = None
    """A member's address, to join its running cluster on the first start."""
    max_store_down_time: float = 1800.0
    """Seconds of silence after which a store counts as gone for good and
    the regions it held are re-replicated elsewhere."""
    snapshot: TransferConfig = field(default_factory=TransferConfig)
    lease_reads: bool = True
    """Leaders serve reads under a lease, without a quorum round (`lease`);
    off: every read waits for a ReadIndex round."""
    apply_flush_interval: float = 1.0
    """Seconds applied data may wait in memory before it is written to LMDB
    (the log keeps its entries until then: `apply_buffer`)..."""
    apply_flush_bytes: int = 16 << 20
    """...or until this many bytes of keys and values wait."""
    hibernate: bool = True
    """Idle regions go quiet: no ticks, no heartbeats (`operation.quiesce`)."""
    metrics_addr: str | None = None
    """HOST:PORT serving Prometheus metrics (`metrics`); None: none."""
    security: SecurityConfig | None = None
    """CurveZMQ keys; None: plain mode (anyone who can connect may do anything)."""
