"""Replica changes of one region, as Raft membership changes: the leader's
next step towards a goal, and every replica's apply of each step.

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

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import msgpack

from ...errors import EpochNotMatch, InvalidRequest, NotLeader, ServerBusy
from ...protocol.peer_change import ADD, CHANGES, REMOVE, goal_reached
from ...protocol.region import LEARNER, VOTER, Epoch, PeerMeta, Region
from ...raft import ConfChange, ConfChangeType, Entry
from ..checks import check_leader, find_peer, not_leader
from ..context import StoreContext
from ..outbox import Handle
from ..peer import Peer
from ..region_state import destroy_region, region_state
from . import quiesce
from .batch import TurnBatch

log = logging.getLogger(__name__)

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


def accept(
    ctx: StoreContext,
    args: dict[str, Any],
    handle: Handle,
    start_move: Callable[[int, int], None],
) -> None:
    """One step towards a voter on `store` (change "add") or no replica
    there ("remove"); the answer carries the region's descriptor, and the
    client asks again until the goal holds. `start_move(region, store)`
    records that the new voter replaces the one on `store`."""
    region_id, store_id, change = args["region"], args["store"], args["change"]
    if type(store_id) is not int or change not in CHANGES:
        raise InvalidRequest('store must be an int and change "add" or "remove"')
    peer = find_peer(ctx.peers, region_id)
    check_leader(peer)
    if change == ADD and store_id not in ctx.book.addrs:
        raise InvalidRequest(f"no store {store_id} in the cluster")
    replaces = args.get("replaces")
    if replaces is not None and change == ADD:
        if type(replaces) is not int:
            raise InvalidRequest("replaces must be a store id")
        start_move(region_id, replaces)
    step = take_step(ctx, peer, store_id, change, handle)
    if isinstance(step, Done):
        ctx.outbox.reply(handle, peer.region_wire())
    elif isinstance(step, Wait):
        raise ServerBusy(step.why)
    elif isinstance(step, TransferFirst):
        raise NotLeader(
            "leadership moves before the replica goes",
            peer.store_of_peer(step.peer_id),
            {"region": peer.region_wire()},
        )


def take_step(
    ctx: StoreContext, peer: Peer, store_id: int, change: str, handle: Handle | None
) -> Step:
    """Take the next step of a replica change of `peer`'s region (this
    store leads it); a proposal answers `handle` once applied."""
    step = next_step(peer, store_id, change, lambda: ctx.meta.alloc_ids(ctx.engine, 1)[0])
    if isinstance(step, Propose):
        log.info("region %d: proposing %s", peer.region.id, step.change.type.name)
        handles = [handle] if handle else []
        dropped = peer.propose(step.change, handles)
        ctx.metrics.count(ctx.metrics.proposals, "conf_change")
        if dropped is not None:
            for h in handles:
                ctx.outbox.reply(h, not_leader(peer, str(dropped)))
    elif isinstance(step, TransferFirst):
        peer.transfer_leader(step.peer_id)
    quiesce.wake(ctx, peer)
    return step


def apply(tb: TurnBatch, peer: Peer, e: Entry) -> Any:
    """A membership change: the descriptor gets the new replica set and
    conf_ver, and Raft the new configuration, in this batch. A change
    that no longer fits is refused the same way on every replica."""
    region = peer.region
    try:
        cc = ConfChange.decode(e.data)
        new = changed_region(region, cc)
    except (ChangeRefused, ValueError, TypeError) as exc:
        log.warning("region %d: conf change at %d refused: %s", region.id, e.index, exc)
        return EpochNotMatch(str(exc), {"regions": [region.to_wire()]})
    cs = peer.raw_node.apply_conf_change(cc)
    peer.region = new
    tb.changed.append(peer)
    log.info("region %d: %s of peer %d applied", region.id, cc.type.name, cc.node_id)
    if new.peer_by_id(peer.peer_id) is None:
        destroy_region(tb.batch, peer.storage, new.epoch.conf_ver, peer.peer_id)
        tb.removed.append(peer)
    else:
        peer.storage.set_region(tb.batch, region_state(new, cs))
    return new.to_wire()
