"""Replica changes of one region, as Raft membership changes.

A replica is added as a learner, caught up (by snapshot if need be), then
promoted to voter; a replica is removed by removing its voter. Every step is
one ConfChange entry, proposed by the region's leader, one at a time. The
entry's context names the store and the conf_ver the leader saw, so every
replica applies the same descriptor change, or refuses it the same way when
the membership moved on in between.

The requests are goals ("a voter on store S", "no replica on S"): asking
again after a leader change or a lost reply is safe, and `next_step` says
what the leader does next towards the goal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import msgpack

from ..protocol.peer_change import REMOVE, goal_reached
from ..protocol.region import LEARNER, VOTER, Epoch, PeerMeta, Region
from ..raft import ConfChange, ConfChangeType
from .peer import Peer

CATCH_UP_SLACK = 64
"""A learner within this many entries of the leader's log counts as caught
up: promoting it then costs the quorum no noticeable wait."""


class ChangeRefused(ValueError):
    """A ConfChange entry that does not fit the region it is applied to."""


@dataclass(frozen=True, slots=True)
class Done:
    """The goal holds: nothing to do."""


@dataclass(frozen=True, slots=True)
class Propose:
    change: ConfChange


@dataclass(frozen=True, slots=True)
class Wait:
    """Not now (a change is in flight, a learner is catching up): ask again."""

    why: str


@dataclass(frozen=True, slots=True)
class TransferFirst:
    """The leader's own replica is to go: hand leadership to `peer_id` first."""

    peer_id: int


Step = Done | Propose | Wait | TransferFirst


def conf_change(kind: ConfChangeType, peer_id: int, store_id: int, conf_ver: int) -> ConfChange:
    return ConfChange(kind, peer_id, msgpack.packb([conf_ver, store_id]))


def next_step(peer: Peer, store_id: int, change: str, new_peer_id: Callable[[], int]) -> Step:
    """What `peer`, the leader, proposes next so that `store_id` holds a
    voter (ADD) or no replica (REMOVE) of its region. `new_peer_id()`
    allocates the id of a new learner."""
    region = peer.region
    if goal_reached(region, store_id, change):
        return Done()
    st = peer.raw_node.basic_status()
    if st.pending_conf_index > st.applied:
        return Wait(f"region {region.id} has a membership change in flight")
    conf_ver = region.epoch.conf_ver
    meta = region.peer_on(store_id)
    if change == REMOVE:
        assert meta is not None
        if meta.peer_id == peer.peer_id:
            target = best_successor(peer)
            if target is None:
                return Wait(f"region {region.id} has no other voter to lead it")
            return TransferFirst(target)
        return Propose(conf_change(ConfChangeType.REMOVE_NODE, meta.peer_id, store_id, conf_ver))
    if meta is None:
        kind = ConfChangeType.ADD_LEARNER_NODE
        return Propose(conf_change(kind, new_peer_id(), store_id, conf_ver))
    if not caught_up(peer, meta.peer_id):
        return Wait(f"the learner of region {region.id} on store {store_id} is catching up")
    return Propose(conf_change(ConfChangeType.ADD_NODE, meta.peer_id, store_id, conf_ver))


def caught_up(peer: Peer, peer_id: int) -> bool:
    st = peer.raw_node.status()
    pr = st.progress.get(peer_id)
    return pr is not None and pr.match + CATCH_UP_SLACK >= st.last_index


def best_successor(peer: Peer) -> int | None:
    """The other voter with the longest log among those heard from lately
    (CheckQuorum's `recent_active`): it takes over leadership fastest, and
    a transfer to a dead one would only stall the region."""
    others = [
        (pr.match, pid)
        for pid, pr in peer.raw_node.status().progress.items()
        if pid != peer.peer_id and not pr.is_learner and pr.recent_active
    ]
    return max(others)[1] if others else None


def changed_region(region: Region, cc: ConfChange) -> Region:
    """The descriptor after applying `cc`; raises ChangeRefused when the
    change no longer fits (the leader saw an older membership)."""
    try:
        conf_ver, store_id = msgpack.unpackb(cc.context)
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise ChangeRefused(f"undecodable conf change context: {e}") from None
    if conf_ver != region.epoch.conf_ver:
        raise ChangeRefused(
            f"region {region.id} membership changed (conf_ver {region.epoch.conf_ver}, "
            f"proposed at {conf_ver})"
        )
    meta = region.peer_on(store_id)
    kind = cc.type
    if kind == ConfChangeType.ADD_LEARNER_NODE and meta is None:
        peers = (*region.peers, PeerMeta(store_id, cc.node_id, LEARNER))
    elif kind == ConfChangeType.ADD_NODE and meta is not None and meta.peer_id == cc.node_id:
        peers = tuple(replace(p, role=VOTER) if p is meta else p for p in region.peers)
    elif kind == ConfChangeType.REMOVE_NODE and meta is not None and meta.peer_id == cc.node_id:
        peers = tuple(p for p in region.peers if p is not meta)
    else:
        raise ChangeRefused(f"{kind.name} of peer {cc.node_id} on store {store_id} does not fit")
    epoch = Epoch(region.epoch.version, conf_ver + 1)
    return replace(region, epoch=epoch, peers=peers)
