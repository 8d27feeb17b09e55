"""Durable storage of a store: one LMDB environment holding every region's
Raft log and state and the user data (see `keys` for the layout)."""

from .engine import Engine, WriteBatch
from .errors import IdentMismatch, StorageError, StorageFull
from .peer_storage import PeerStorage
from .states import ApplyState, RegionState

__all__ = [
    "ApplyState",
    "Engine",
    "IdentMismatch",
    "PeerStorage",
    "RegionState",
    "StorageError",
    "StorageFull",
    "WriteBatch",
]
