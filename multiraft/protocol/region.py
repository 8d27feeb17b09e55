"""Region descriptor: the key range a Raft group owns, its epoch and replicas.

The epoch orders descriptors of one region: `version` grows with every split
or merge (the range changed), `conf_ver` with every membership change. A
request carries the epoch its sender saw; a stale one is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

VOTER = "voter"
LEARNER = "learner"
ROLES = (VOTER, LEARNER)


@dataclass(slots=True, frozen=True)
class Epoch:
    version: int = 1
    conf_ver: int = 1

    def to_wire(self) -> list[int]:
        return [self.version, self.conf_ver]

    @staticmethod
    def from_wire(w: Any) -> Epoch:
        version, conf_ver = w
        if not (isinstance(version, int) and isinstance(conf_ver, int)):
            raise TypeError("epoch must be two ints")
        return Epoch(version, conf_ver)


@dataclass(slots=True, frozen=True)
class PeerMeta:
    """One replica of a region: which store holds it, and its Raft id."""

    store_id: int
    peer_id: int
    role: str = VOTER


@dataclass(slots=True, frozen=True)
class Region:
    id: int
    start: bytes = b""
    end: bytes = b""
    """Exclusive; b"" means the end of the key space."""
    epoch: Epoch = Epoch()
    peers: tuple[PeerMeta, ...] = field(default_factory=tuple)

    def contains(self, key: bytes) -> bool:
        return self.start <= key and (not self.end or key < self.end)

    def overlaps(self, other: Region) -> bool:
        return (not self.end or other.start < self.end) and (
            not other.end or self.start < other.end
        )

    def peer_on(self, store_id: int) -> PeerMeta | None:
        for p in self.peers:
            if p.store_id == store_id:
                return p
        return None

    def peer_by_id(self, peer_id: int) -> PeerMeta | None:
        for p in self.peers:
            if p.peer_id == peer_id:
                return p
        return None

    def with_epoch(self, **changes: int) -> Region:
        return replace(self, epoch=replace(self.epoch, **changes))

    def is_newer_than(self, other: Region) -> bool:
        a, b = self.epoch, other.epoch
        return (a.version, a.conf_ver) > (b.version, b.conf_ver)

    def to_wire(self) -> list:
        peers = [[p.store_id, p.peer_id, p.role] for p in self.peers]
        return [self.id, self.start, self.end, self.epoch.to_wire(), peers]

    @staticmethod
    def from_wire(w: Any) -> Region:
        region_id, start, end, epoch, peers = w
        if not (isinstance(region_id, int) and isinstance(start, bytes) and isinstance(end, bytes)):
            raise TypeError("bad region descriptor")
        metas = tuple(PeerMeta(s, p, r) for s, p, r in peers)
        for m in metas:
            if not (type(m.store_id) is int and type(m.peer_id) is int and m.role in ROLES):
                raise TypeError("bad peer in a region descriptor")
        return Region(region_id, start, end, Epoch.from_wire(epoch), metas)

    def to_json(self, leader_store: int | None, hex_keys: bool = False) -> dict:
        """The object of `multiraft region list --json` (INTERFACE.md)."""

        def key(k: bytes) -> str:
            return k.hex() if hex_keys else k.decode("utf-8", "backslashreplace")

        return {
            "id": self.id,
            "start": key(self.start),
            "end": key(self.end),
            "epoch": {"version": self.epoch.version, "conf_ver": self.epoch.conf_ver},
            "peers": [
                {"store_id": p.store_id, "peer_id": p.peer_id, "role": p.role} for p in self.peers
            ],
            "leader": leader_store,
        }
