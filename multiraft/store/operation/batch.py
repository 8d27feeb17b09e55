"""TurnBatch: the turn's one LMDB WriteBatch, and what applying committed
entries into it found, for the turn to act on once it is committed."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...protocol.region import Region
from ...storage.engine import Engine, WriteBatch
from ...storage.peer_storage import PeerStorage
from ..apply_buffer import ApplyBuffer
from ..peer import Peer
from ..session import SessionTable, write_changes


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
    applied: ApplyBuffer
    """Where normal entries' data, sessions and applied indexes go."""
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
    def open(engine: Engine, applied: ApplyBuffer) -> TurnBatch:
        return TurnBatch(engine, engine.batch(), applied)

    def get(self, peer: Peer, key: bytes) -> bytes | None:
        """A user key's value as `peer` applied it so far."""
        return self.applied.get(peer.region.id, key)

    def before_region_change(self) -> None:
        """A region's state is about to change in this batch (a split, a
        membership change): write everything applied before it with it."""
        self.applied.flush(self.batch)

    def applied_now(self, peer: Peer, index: int) -> None:
        """`peer` applied `index`, an entry that changed its region: its
        applied index and sessions go in this batch, so a restart never
        applies that entry again."""
        peer.storage.set_applied(self.batch, index)
        write_changes(self.batch, peer.region.id, peer.sessions)
