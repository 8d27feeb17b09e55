"""Writes (put, delete, cas): accepted into the leader's queue once checked,
proposed as one entry per region per turn (or, while the leader's last
entry is not yet committed, held for it: `due`), applied exactly once
through the region's session table (Raft thesis §6.3)."""

from __future__ import annotations

import logging
from typing import Any

from ...errors import InvalidRequest, ServerBusy
from ...protocol.limits import check_key, check_optional_value, check_value
from ...protocol.region import Epoch
from ..checks import check_leader, check_region, find_peer, key_not_in, not_leader
from ..commands import CAS, DELETE, OPS, PUT, WriteCommand, encode_writes
from ..context import StoreContext
from ..outbox import Handle
from ..peer import Peer
from ..session import NOT_APPLIED
from . import quiesce
from .batch import TurnBatch

log = logging.getLogger(__name__)

MAX_PENDING_PROPOSALS = 1024
"""Entries a region may have proposed but not applied before writes are refused
with ServerBusy (each entry carries a whole turn's writes)."""
HOLD_BYTES = 1 << 20
"""Writes wait for their region's entry in flight (group commit) only while
their keys and values hold less than this: a bigger entry is slow to
replicate, and one past the frame limit could never leave."""


def accept(ctx: StoreContext, op: str, args: dict[str, Any], handle: Handle) -> None:
    """Queue a write on the leader of its region; raises what refuses it."""
    key = check_key(args["key"])
    a: bytes | None = None
    b: bytes | None = None
    if op == "put":
        a = check_value(args["value"])
    elif op == "cas":
        a = check_optional_value(args["expected"], "expected")
        b = check_optional_value(args["new"], "new")
    client, seq, acked = args["client"], args["seq"], args["acked"]
    if not all(type(i) is int and i >= 0 for i in (client, seq, acked)):
        raise InvalidRequest("client, seq and acked must be non-negative ints")
    epoch = Epoch.from_wire(args["epoch"])
    peer = find_peer(ctx.peers, args["region"])
    check_region(peer.region, epoch.version, key, ctx.router)
    check_leader(peer)
    if len(peer.proposals) >= MAX_PENDING_PROPOSALS:
        raise ServerBusy(f"region {peer.region.id} has {len(peer.proposals)} proposals in flight")
    cmd = WriteCommand(OPS[op], client, seq, acked, epoch.version, key, a, b)
    peer.writes.append((cmd, handle))
    peer.write_bytes += len(key) + (len(a) if a else 0) + (len(b) if b else 0)
    quiesce.wake(ctx, peer)


def due(peer: Peer) -> bool:
    """Whether `peer`'s queued writes go into an entry this turn: not while
    the leader's last entry is still uncommitted (they wait for it and then
    go together: a group commit), unless they are many bytes already. A
    replica that no longer leads proposes at once, to be refused."""
    return bool(peer.writes) and (peer.write_bytes >= HOLD_BYTES or not peer.raw_node.committing())


def propose(ctx: StoreContext, peer: Peer) -> None:
    """`peer`'s queued writes, as one entry."""
    writes, peer.writes = peer.writes, []
    peer.write_bytes = 0
    handles = [h for _, h in writes]
    dropped = peer.propose(encode_writes([c for c, _ in writes]), handles)
    if dropped is None:
        index, term, _ = peer.proposals[-1]
        peer.lease.proposed(index, term, ctx.now)
    if dropped is not None:
        refusal = not_leader(peer, str(dropped))
        for h in handles:
            ctx.outbox.reply(h, refusal)


def apply(tb: TurnBatch, peer: Peer, index: int, cmds: list[WriteCommand]) -> list[Any]:
    """The results of one entry's writes, applied into the turn's batch.
    Every replica applies every write, so what the commands share (the
    region, its sessions, its part of the apply buffer) is looked up once
    per entry, not once per command."""
    region, sessions, size = peer.region, peer.sessions, peer.size
    buffer = tb.applied
    data = buffer.region(peer)
    results: list[Any] = []
    for c in cmds:
        result = sessions.lookup(c.client, c.seq, c.acked, index)
        if result is NOT_APPLIED:
            key = c.key
            if not region.contains(key):
                # The region split since the command was proposed: nothing
                # is applied and the client retries in the right region.
                results.append(key_not_in(region))
                continue
            op, result = c.op, None
            if op == PUT:
                buffer.put_into(data, key, c.a)
                size.grow(key, c.a)
            elif op == DELETE:
                buffer.put_into(data, key, None)
                size.grow(key, None)
            elif op == CAS:
                result = tb.get(peer, key) == c.a
                if result:
                    buffer.put_into(data, key, c.b)
                    size.grow(key, c.b)
            else:
                result = InvalidRequest(f"unknown write op {op}")
            sessions.record(c.client, c.seq, c.acked, index, result)
        results.append(result)
    return results
