"""A turn's Readies, for every region that has one, in etcd-raft's order:
a leader's appends leave at once; entries, HardStates and applied data of
all regions go into ONE batch (one fsync); every other message waits for
the commit; then each Ready is advanced and the reads it released served.

Applying committed entries dispatches on what they carry: writes (`write`),
splits (`split`) and membership changes (`conf_change`). Each entry's
results answer the proposals waiting on it, matched by (index, term).
"""

from __future__ import annotations

import logging
from typing import Any

import msgpack

from ...raft import Entry, EntryType, Message, MessageType, Ready, StateType
from ...transport import codec
from ..checks import not_leader
from ..commands import SPLITS, decode_entry
from ..context import StoreContext
from ..peer import Peer
from . import conf_change, peer_life, quiesce, read, split, write
from .batch import TurnBatch
from .snapshot import Install, SnapshotStreams

log = logging.getLogger(__name__)

GC_STEPS = 16
"""A log over its GC threshold loses at most threshold/GC_STEPS entries per turn."""

EARLY_MESSAGES = frozenset((MessageType.APP, MessageType.HEARTBEAT))
MAY_CREATE = frozenset((MessageType.VOTE, MessageType.PRE_VOTE))
"""Messages that may reach a replica its store does not have yet (TiKV's
`is_initial_msg`), with a heartbeat of commit 0 (to a peer the leader never
heard from): they carry the region's descriptor, so that the store can
create the replica. Appends and answers never do: a new replica is made by
the heartbeat that follows its leader's first append."""

Readies = list[tuple[Peer, Ready]]


def leader_sends_early(peer: Peer, rd: Ready) -> tuple[list[Message], list[Message]]:
    """Split a Ready's messages into those sent before its entries are
    persisted and those sent after. A leader whose term and vote are already
    durable sends its appends and heartbeats at once, so followers write
    while it writes (Raft thesis 10.2.1): its own log counts toward commit
    only once persisted, and a crash before that leaves it unable to lead
    that term again. Everything else (responses, votes) waits for the fsync."""
    hs, durable = rd.hard_state, peer.storage.hard_state
    term_durable = hs is None or (hs.term, hs.vote) == (durable.term, durable.vote)
    if not (term_durable and peer.is_leader()):
        return [], rd.messages
    early: list[Message] = []
    late: list[Message] = []
    for m in rd.messages:
        (early if m.type in EARLY_MESSAGES else late).append(m)
    return early, late


def send(
    ctx: StoreContext, snapshots: SnapshotStreams, peer: Peer, msgs: list[Message], early: bool
) -> None:
    """Into the outbox by destination store; MsgSnap becomes a stream. The
    sender gets another turn: its messages may be refused (then Raft hears
    of it), and a busy region keeps the loop from sleeping."""
    if msgs:
        ctx.touch(peer)
    region = peer.region
    sent_quiesce = False
    for m in msgs:
        store = peer.store_of_peer(m.to)
        if store is None:
            continue
        if m.type == MessageType.SNAP:
            snapshots.send(peer, m, store)
        elif m.type == MessageType.HEARTBEAT and not m.context and m.commit:
            # Coalesced; one with commit 0 goes whole: its follower may not
            # exist yet, and only a whole message (with the region's
            # descriptor) can create it.
            flags = quiesce.beat_flags(peer)
            ctx.outbox.beat(store, region.id, m, flags, early=early)
            sent_quiesce |= bool(flags)
        elif m.type == MessageType.HEARTBEAT_RESP and not m.context:
            ctx.outbox.beat(store, region.id, m, codec.RESPONSE, early=early)
        else:
            epoch = (region.epoch.version, region.epoch.conf_ver)
            creates = m.type in MAY_CREATE or (m.type == MessageType.HEARTBEAT and not m.commit)
            desc = peer.region_wire() if creates else None
            ctx.outbox.raft(store, codec.RaftItem(region.id, epoch, m, desc), early=early)
    quiesce.after_send(ctx, peer, sent_quiesce)


def persist(
    ctx: StoreContext, snapshots: SnapshotStreams, readies: Readies, installed: list[Install]
) -> TurnBatch:
    """Send the early messages, then fill the turn's one batch: snapshots
    whose data is in, entries, HardStates, applied entries, log GC; then
    queue the messages that wait for its commit. `installed` are among
    `readies`: their snapshot's data is in."""
    _note_leadership(ctx, readies)
    splits = [leader_sends_early(peer, rd) for peer, rd in readies]
    for (peer, _), (early, _) in zip(readies, splits, strict=True):
        send(ctx, snapshots, peer, early, early=True)
    tb = TurnBatch.open(ctx.engine, ctx.applied)
    for install in installed:
        snapshots.finish(tb.batch, install)
    entries = 0
    for peer, rd in readies:
        peer.storage.append(tb.batch, rd.entries)
        entries += len(rd.entries)
        if rd.hard_state is not None:
            peer.storage.set_hard_state(tb.batch, rd.hard_state)
        apply_entries(ctx, tb, peer, rd.committed_entries)
        if peer not in tb.removed:
            compact_log(ctx, tb, peer, rd)
    for (peer, _), (_, late) in zip(readies, splits, strict=True):
        send(ctx, snapshots, peer, late, early=False)
    if entries:
        ctx.metrics.entries_per_commit.observe(entries)
    return tb


def _note_leadership(ctx: StoreContext, readies: Readies) -> None:
    for peer, rd in readies:
        if rd.soft_state is not None:
            peer.soft_state = rd.soft_state
            peer.gossip_due = True
            if peer.is_leader():
                ctx.leaders.add(peer.region.id)
            else:
                ctx.leaders.discard(peer.region.id)


def advance(
    ctx: StoreContext,
    snapshots: SnapshotStreams,
    readies: Readies,
    installed: list[Install],
    tb: TurnBatch,
) -> None:
    """The turn's batch is committed: act on what applying found, advance
    every Ready, serve the reads it released."""
    for peer in tb.changed:
        ctx.router.update(peer.region)
    for region in tb.ranges:
        ctx.ranges.update(region)
    for install in installed:
        snapshots.installed(install)
    for peer, rd in readies:
        if rd.soft_state is not None and rd.soft_state.raft_state != StateType.LEADER:
            read.on_leadership_lost(ctx, peer)
        read.on_read_states(peer, rd.read_states)
        peer.raw_node.advance(rd)
        read.serve(ctx, peer)
    split.start_new_regions(ctx, tb)
    for peer in tb.removed:
        peer_life.drop(ctx, peer)


def apply_entries(ctx: StoreContext, tb: TurnBatch, peer: Peer, entries: list[Entry]) -> None:
    """Apply committed entries: writes into the apply buffer with the
    region's applied index; an entry that changes the region (membership,
    split) into the turn's batch, with everything applied before it and its
    own applied index, so a restart neither applies one twice nor skips one."""
    for e in entries:
        if e.type == EntryType.CONF_CHANGE:
            tb.before_region_change()
            answer(ctx, peer, e, [conf_change.apply(tb, peer, e)])
            peer.lease.end(ctx.now)  # the quorum changed
            if peer in tb.removed:
                # The replica is gone with everything it kept: nothing
                # later in its log concerns this store.
                return
            tb.applied_now(peer, e.index)
            continue
        answer(ctx, peer, e, _apply_normal(tb, peer, e) if e.data else [])
    if entries:
        last = entries[-1]
        peer.lease.committed(last.index, last.term)
        peer.applied = last.index
        tb.applied.applied_to(peer, last.index, ctx.now)


def _apply_normal(tb: TurnBatch, peer: Peer, e: Entry) -> list[Any]:
    try:
        kind, payload = decode_entry(e.data)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        # Only our own leaders write entries: this is corruption, not input.
        log.error("region %d: undecodable entry %d: %s", peer.region.id, e.index, exc)
        return []
    if kind == SPLITS:
        tb.before_region_change()
        result = split.apply(tb, peer, payload)
        tb.applied_now(peer, e.index)
        return [result]
    return write.apply(tb, peer, e.index, payload)


def answer(ctx: StoreContext, peer: Peer, e: Entry, results: list[Any]) -> None:
    """Answer the proposal of entry `e` with its results, if it is ours;
    proposals it overwrote can no longer commit: they are refused."""
    handles, lost = peer.take_proposal(e.index, e.term)
    if lost:
        refusal = not_leader(peer, "proposal was overwritten by a new leader")
        for h in lost:
            ctx.outbox.reply(h, refusal)
    if not handles:
        return
    if len(results) != len(handles):
        # Never expected: the entry is not the one we proposed. What
        # happened is unknown, so no answer: the clients retry.
        log.error("region %d: entry %d does not match its proposal", peer.region.id, e.index)
        return
    for h, result in zip(handles, results, strict=True):
        ctx.outbox.reply(h, result)


def compact_log(ctx: StoreContext, tb: TurnBatch, peer: Peer, rd: Ready) -> None:
    """Raft log GC, in the turn's batch: every replica compacts its own
    log. Past the threshold, a turn discards at most 1/GC_STEPS of it,
    so the work is spread over turns instead of making one turn's commit
    (and every request waiting on it) many times slower."""
    if not rd.committed_entries:
        return
    # What is applied on disk, not in memory: a restart applies the log
    # again from there (see `apply_buffer`).
    applied = peer.storage.apply_state.applied_index
    first = peer.storage.first_index()
    threshold = ctx.config.log_gc_threshold
    if applied - first + 1 > threshold:
        step = max(1, threshold // GC_STEPS)
        peer.storage.compact(tb.batch, min(applied - ctx.config.log_gc_keep, first - 1 + step))
