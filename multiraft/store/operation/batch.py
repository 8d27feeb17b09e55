"""TurnBatch: the turn's one LMDB WriteBatch, and what applying committed
entries into it found, for the turn to act on once it is committed."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...protocol.region import Region
from ...storage import kv
from ...storage.engine import Engine, WriteBatch
from ...storage.peer_storage import PeerStorage
from ..peer import Peer
from ..session import SessionTable


@dataclass(slots=True)
class NewRegion:
    """A region a split created in this batch: its replica starts once the
    batch is committed."""

    parent: Peer
    region: Region
    storage: PeerStorage
    sessions: SessionTable


@dataclass
class TurnBatch:
    engine: Engine
    batch: WriteBatch
    overlay: dict[bytes, bytes | None] = field(default_factory=dict)
    """Values written in this batch: writes of one batch see each other (two
    CAS on one key in one turn) before it commits."""
    new_regions: list[NewRegion] = field(default_factory=list)
    changed: list[Peer] = field(default_factory=list)
    """Peers whose membership changed in this batch."""
    ranges: list[Region] = field(default_factory=list)
    """Regions this batch shrank (splits): their new ranges count once it
    is committed, their old ones until then."""
    removed: list[Peer] = field(default_factory=list)
    """Peers whose own replica was removed: their state is deleted in this
    batch, and the store drops them once it is committed."""

    @staticmethod
    def open(engine: Engine) -> TurnBatch:
        return TurnBatch(engine, engine.batch())

    def get(self, key: bytes) -> bytes | None:
        if key in self.overlay:
            return self.overlay[key]
        return kv.get(self.engine, key)

    def put(self, key: bytes, value: bytes | None) -> None:
        """Write (None: delete) a user key."""
        self.overlay[key] = value
        if value is None:
            kv.delete(self.batch, key)
        else:
            kv.put(self.batch, key, value)
