"""Reads (get, scan): accepted on the leader once checked; under a valid
lease (`..lease`) their read index is the leader's commit index, otherwise
one ReadIndex per region per turn finds it; served once the region has
applied up to the read index (linearizable: Raft thesis §6.4)."""

from __future__ import annotations

from typing import Any

from ...errors import InvalidRequest, MultiraftError
from ...protocol.limits import MAX_SCAN_LIMIT, check_key
from ...protocol.region import Epoch
from ...raft import ReadState
from ..checks import check_leader, check_region, find_peer, not_leader
from ..commands import ReadOp
from ..context import StoreContext
from ..outbox import Handle
from ..peer import Peer
from . import quiesce


def accept(ctx: StoreContext, op: str, args: dict[str, Any], handle: Handle) -> None:
    """Queue a read on the leader of its region; raises what refuses it."""
    if op == "get":
        read = ReadOp("get", check_key(args["key"]))
    else:
        limit = args.get("limit")
        if limit is None:
            limit = MAX_SCAN_LIMIT
        elif type(limit) is not int or limit <= 0:
            raise InvalidRequest("scan limit must be a positive int")
        start, end = check_key(args["start"], "start"), check_key(args["end"], "end")
        read = ReadOp("scan", start, end, min(limit, MAX_SCAN_LIMIT))
    epoch = Epoch.from_wire(args["epoch"])
    peer = find_peer(ctx.peers, args["region"])
    check_region(peer.region, epoch.version, read.key, ctx.router)
    check_leader(peer)
    read.version = peer.region.epoch.version
    peer.reads.append((read, handle))
    quiesce.wake(ctx, peer)


def propose(ctx: StoreContext, peer: Peer) -> None:
    """The turn's queued reads of `peer`'s region: at the commit index under
    a valid lease, else covered by one ReadIndex."""
    reads, peer.reads = peer.reads, []
    index = peer.raw_node.lease_read_index() if ctx.config.lease_reads else 0
    st = peer.raw_node.basic_status()
    term = st.hard_state.term
    if st.lead_transferee:
        peer.lease.end_term(term)  # however the transfer began
    if index and peer.lease.valid(term, ctx.now):
        peer.ready_reads.append((index, reads))
        serve(ctx, peer)
        return
    peer.read_seq += 1
    request = peer.read_seq.to_bytes(8, "big")
    peer.read_waits[request] = (term, ctx.now, reads)
    peer.raw_node.read_index(request)


def on_read_states(peer: Peer, read_states: list[ReadState]) -> None:
    """Reads whose read index is known wait for it to be applied; the
    quorum that confirmed it renews the lease."""
    for rs in read_states:
        wait = peer.read_waits.pop(rs.request_ctx, None)
        if wait:
            term, issued_at, reads = wait
            peer.lease.renew(term, issued_at)
            peer.ready_reads.append((rs.index, reads))


def on_leadership_lost(ctx: StoreContext, peer: Peer) -> None:
    """Reads waiting for a quorum check will never get one now."""
    refusal = not_leader(peer, "leadership lost before the read")
    for _, _, reads in peer.read_waits.values():
        for _, h in reads:
            ctx.outbox.reply(h, refusal)
    peer.read_waits.clear()


def serve(ctx: StoreContext, peer: Peer) -> None:
    """Answer the reads whose read index the region has applied."""
    applied = peer.applied
    while peer.ready_reads and peer.ready_reads[0][0] <= applied:
        _, reads = peer.ready_reads.popleft()
        for op, handle in reads:
            ctx.outbox.reply(handle, execute(ctx, peer, op))


def execute(ctx: StoreContext, peer: Peer, op: ReadOp) -> Any:
    region = peer.region
    try:
        # A split since the read was accepted changed where a scan goes on
        # from: the client must learn the new range first.
        check_region(region, op.version, op.key, ctx.router)
    except MultiraftError as e:
        return e
    if op.op == "get":
        return ctx.applied.get(region.id, op.key)
    end = op.end
    if region.end and (not end or end > region.end):
        end = region.end
    return [[k, v] for k, v in ctx.applied.scan(region.id, op.key, end, op.limit)]
