"""A deterministic, sans-I/O Raft core in the design of etcd-raft.

No sockets, files, threads or clocks: time is `RawNode.tick()`, randomness is
seeded from `Config.seed`, and all output comes out of `RawNode.ready()`.
"""

from .config import Config, ReadOnlyOption
from .errors import (
    Compacted,
    ConfigInvalid,
    ProposalDropped,
    RaftError,
    SnapshotOutOfDate,
    SnapshotTemporarilyUnavailable,
    StepLocalMessage,
    StepPeerNotFound,
    StorageError,
    Unavailable,
)
from .rawnode import BasicStatus, RawNode, Ready, SnapshotStatus, Status
from .storage import MemoryStorage, Storage
from .types import (
    NONE,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
    SnapshotMetadata,
    SoftState,
    StateType,
)

__all__ = [
    "NONE",
    "BasicStatus",
    "Compacted",
    "ConfChange",
    "ConfChangeType",
    "ConfState",
    "Config",
    "ConfigInvalid",
    "Entry",
    "EntryType",
    "HardState",
    "MemoryStorage",
    "Message",
    "MessageType",
    "ProposalDropped",
    "RaftError",
    "RawNode",
    "ReadOnlyOption",
    "ReadState",
    "Ready",
    "Snapshot",
    "SnapshotMetadata",
    "SnapshotOutOfDate",
    "SnapshotStatus",
    "SnapshotTemporarilyUnavailable",
    "SoftState",
    "StateType",
    "Status",
    "StepLocalMessage",
    "StepPeerNotFound",
    "Storage",
    "StorageError",
    "Unavailable",
]
