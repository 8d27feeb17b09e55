"""The checks every request and every applied command of a region passes,
written once: the region is here, its range is as the sender saw it, the
key lies in it, this store leads it. Each failure raises the error the
client retries from (see `multiraft.errors`), with what it needs to:
the current descriptors, the leader's store."""

from __future__ import annotations

from ..errors import EpochNotMatch, KeyNotInRegion, NotLeader, RegionNotFound
from ..protocol.region import Region
from ..protocol.router import RegionRouter
from .peer import Peer


def check_region(
    region: Region,
    version: int | None = None,
    key: bytes | None = None,
    directory: RegionRouter | None = None,
) -> None:
    """Raise EpochNotMatch if `region`'s range changed since the sender saw
    epoch `version`, KeyNotInRegion if `key` lies outside it. With a
    `directory`, EpochNotMatch also names the region now holding `key`
    (not in apply: its results are replicated state, the same everywhere)."""
    if version is not None and version != region.epoch.version:
        regions = [region.to_wire()]
        holder = directory.lookup(key) if directory is not None and key is not None else None
        if holder is not None and holder.id != region.id:
            regions.append(holder.to_wire())
        raise EpochNotMatch(
            f"region {region.id} is at epoch version {region.epoch.version}, not {version}",
            {"regions": regions},
        )
    if key is not None and not region.contains(key):
        raise key_not_in(region)


def key_not_in(region: Region) -> KeyNotInRegion:
    """The answer to a command for a key outside `region`, with its range."""
    return KeyNotInRegion(f"key not in region {region.id}", {"region": region.to_wire()})


def find_peer(peers: dict[int, Peer], region_id: int) -> Peer:
    peer = peers.get(region_id)
    if peer is None:
        raise RegionNotFound(f"region {region_id} is not on this store")
    return peer


def check_leader(peer: Peer, why: str = "") -> None:
    if not peer.is_leader():
        raise not_leader(
            peer, why or f"store {peer.store_id} does not lead region {peer.region.id}"
        )


def not_leader(peer: Peer, why: str) -> NotLeader:
    return NotLeader(
        f"region {peer.region.id}: {why}", peer.leader_store(), {"region": peer.region_wire()}
    )
