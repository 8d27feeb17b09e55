"""Wire encoding of the frames one store sends another (the frame format
and the client frames are `multiraft.protocol.wire`'s).

| kind       | body                                                                 |
| ---------- | -------------------------------------------------------------------- |
| PEER (1)   | [cluster_id, from_store_id, [[region_id, epoch, raft_message,        |
|            |  region], ...], extras, beats]  — all Raft traffic from one store   |
|            |  to another in one turn; `region` is the sender's descriptor, so a  |
|            |  store that has no replica of it yet can create one. `beats` holds  |
|            |  the heartbeats and heartbeat responses of every region, coalesced: |
|            |  six ints each, flat (region_id, from_peer, to_peer, term, commit,  |
|            |  flags: RESPONSE, QUIESCE), fanned out into Raft messages on arrival|
| SNAP_CHUNK | [cluster_id, from_store_id, region_id, transfer_id, seq,            |
|  (4)       |  [k0, v0, k1, v1, ...], done, item]  — one chunk of a streamed      |
|            |  snapshot; `item` (a PEER item carrying the MsgSnap with the        |
|            |  snapshot's header) is in chunk 0 only, `done` marks the last one   |
| SNAP_ACK(5)| [cluster_id, from_store_id, transfer_id, seq, ok]  — the receiver  |
|            |  has chunk `seq` (ok) or gave the transfer up (not ok)             |

Decoding never trusts its input: sizes are bounded, every field's type is
checked, and anything off raises `CodecError` (the store logs and drops it).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..protocol.wire import (
    CLIENT_DECODERS,
    KIND_PEER,
    KIND_SNAP_ACK,
    KIND_SNAP_CHUNK,
    ClientFrame,
    CodecError,
    are_uints,
    decode_body,
    decode_checked,
    expect,
    is_uint,
    pack_frame,
    uints,
)
from ..raft.types import Message, MessageType

__all__ = [
    "CodecError",
    "Frame",
    "BEAT_FIELDS",
    "QUIESCE",
    "RESPONSE",
    "PeerBatch",
    "RaftItem",
    "SnapAck",
    "SnapChunk",
    "decode",
    "encode_peer_batch",
    "encode_snap_ack",
    "encode_snap_chunk",
]


@dataclass(slots=True)
class RaftItem:
    """One Raft message of one region, with the sender's view of its epoch."""

    region_id: int
    epoch: tuple[int, int]
    message: Message
    region: list | None = None
    """The sender's region descriptor (wire form)."""


@dataclass(slots=True)
class PeerBatch:
    """Everything one store sends another in one loop turn."""

    cluster_id: int
    from_store: int
    items: list[RaftItem] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    """Store-level gossip: region descriptors, store addresses and statistics."""
    beats: list[int] = field(default_factory=list)
    """Coalesced heartbeats and responses, BEAT_FIELDS ints each (see above)."""


BEAT_FIELDS = 6
"""region_id, from_peer, to_peer, term, commit, flags."""
RESPONSE = 1
"""A heartbeat's flag: it answers a heartbeat (its commit is 0)."""
QUIESCE = 2
"""A heartbeat's flag: the leader goes quiet after it; so may the follower."""


@dataclass(slots=True)
class SnapChunk:
    """One chunk of a snapshot streamed from one store to another."""

    cluster_id: int
    from_store: int
    region_id: int
    transfer_id: int
    seq: int
    pairs: list[bytes]
    """User keys and values, flat: [k0, v0, k1, v1, ...]."""
    done: bool
    item: RaftItem | None = None
    """The MsgSnap (with the sender's region descriptor): chunk 0 only."""


@dataclass(slots=True)
class SnapAck:
    """The receiver's answer to one chunk; not ok: it gave the transfer up."""

    cluster_id: int
    from_store: int
    transfer_id: int
    seq: int
    ok: bool


def _item_wire(it: RaftItem) -> list:
    return [it.region_id, list(it.epoch), it.message.to_wire(), it.region]


def encode_peer_batch(batch: PeerBatch) -> bytes:
    items = [_item_wire(it) for it in batch.items]
    body = [batch.cluster_id, batch.from_store, items, batch.extras, batch.beats]
    return pack_frame(KIND_PEER, body)


def encode_snap_chunk(c: SnapChunk) -> bytes:
    item = None if c.item is None else _item_wire(c.item)
    body = [c.cluster_id, c.from_store, c.region_id, c.transfer_id, c.seq, c.pairs, c.done, item]
    return pack_frame(KIND_SNAP_CHUNK, body)


def encode_snap_ack(a: SnapAck) -> bytes:
    return pack_frame(KIND_SNAP_ACK, [a.cluster_id, a.from_store, a.transfer_id, a.seq, a.ok])


def _peer_batch(body: Any) -> PeerBatch:
    expect(isinstance(body, list) and len(body) == 5, "peer batch must be a 5-list")
    cluster_id, from_store, items, extras, beats = body
    expect(is_uint(cluster_id) and is_uint(from_store), "bad peer ids")
    expect(isinstance(items, list) and isinstance(extras, dict), "bad peer batch")
    expect(are_uints(beats) and len(beats) % BEAT_FIELDS == 0, "bad coalesced heartbeats")
    expect(min(beats[::BEAT_FIELDS], default=1) > 0, "bad region id in a heartbeat")
    items = [_raft_item(item) for item in items]
    return PeerBatch(cluster_id, from_store, items, extras, beats)


def _raft_item(item: Any) -> RaftItem:
    # Every message between stores passes here: the checks are spelt out
    # with `type(...) is`, which costs a third of the generic helpers.
    expect(type(item) is list and len(item) == 4, "raft item must be a 4-list")
    region_id, epoch, wire, region = item
    expect(type(region_id) is int and region_id > 0, "bad region id")
    expect(type(epoch) is list and len(epoch) == 2, "bad epoch")
    version, conf_ver = epoch
    expect(type(version) is int and type(conf_ver) is int and min(epoch) >= 0, "bad epoch")
    expect(region is None or type(region) is list, "bad region descriptor")
    return RaftItem(region_id, (version, conf_ver), _message(wire), region)


def _snap_chunk(body: Any) -> SnapChunk:
    expect(isinstance(body, list) and len(body) == 8, "snapshot chunk must be an 8-list")
    cluster_id, from_store, region_id, transfer_id, seq, pairs, done, item = body
    expect(are_uints([cluster_id, from_store, transfer_id, seq]), "bad snapshot chunk ids")
    expect(is_uint(region_id) and region_id > 0, "bad region id")
    expect(isinstance(pairs, list) and len(pairs) % 2 == 0, "chunk pairs must be an even list")
    expect(all(isinstance(b, bytes) for b in pairs), "chunk keys and values must be bytes")
    expect(type(done) is bool, "bad chunk done flag")
    expect((item is None) == (seq != 0), "chunk 0, and only chunk 0, carries the MsgSnap")
    raft_item = None
    if item is not None:
        raft_item = _raft_item(item)
        m = raft_item.message
        expect(raft_item.region_id == region_id, "chunk and MsgSnap regions differ")
        expect(m.type == MessageType.SNAP and m.snapshot is not None, "chunk 0 needs a MsgSnap")
    return SnapChunk(cluster_id, from_store, region_id, transfer_id, seq, pairs, done, raft_item)


def _snap_ack(body: Any) -> SnapAck:
    expect(isinstance(body, list) and len(body) == 5, "snapshot ack must be a 5-list")
    cluster_id, from_store, transfer_id, seq, ok = body
    expect(are_uints([cluster_id, from_store, transfer_id, seq]), "bad snapshot ack ids")
    expect(type(ok) is bool, "bad snapshot ack flag")
    return SnapAck(cluster_id, from_store, transfer_id, seq, ok)


_MESSAGE_UINTS = operator.itemgetter(0, 1, 2, 3, 4, 5, 7, 10)
"""The integer fields of a Raft message on the wire."""


def _message(wire: Any) -> Message:
    expect(type(wire) is list and len(wire) == 12, "raft message must be a 12-list")
    expect(uints(_MESSAGE_UINTS(wire)), "bad raft message field")
    entries = wire[6]
    expect(type(entries) is list, "bad raft entries")
    for e in entries:
        expect(type(e) is list and len(e) == 4, "bad raft entry")
        term, index, kind, data = e
        expect(
            type(term) is int and type(index) is int and type(kind) is int and type(data) is bytes,
            "bad raft entry",
        )
        expect(term >= 0 and index >= 0, "bad raft entry")
    expect(type(wire[9]) is bool, "bad raft reject flag")
    expect(isinstance(wire[11], bytes), "bad raft context")
    if wire[8] is not None:
        _check_snapshot(wire[8])
    return Message.from_wire(wire)


def _check_snapshot(snap: Any) -> None:
    expect(isinstance(snap, list) and len(snap) == 2 and isinstance(snap[0], bytes), "bad snap")
    meta = snap[1]
    expect(isinstance(meta, list) and len(meta) == 3 and are_uints(meta[1:]), "bad snap metadata")
    cs = meta[0]
    expect(isinstance(cs, list) and len(cs) == 2 and all(are_uints(ids) for ids in cs), "bad conf")


Frame = PeerBatch | SnapChunk | SnapAck | ClientFrame

PEER_DECODERS: dict[int, Callable[[Any], Frame]] = {
    **CLIENT_DECODERS,
    KIND_PEER: _peer_batch,
    KIND_SNAP_CHUNK: _snap_chunk,
    KIND_SNAP_ACK: _snap_ack,
}


def decode(frame: bytes) -> Frame:
    """Decode any frame a store may receive; raises CodecError on anything
    malformed."""
    kind, body = decode_body(frame)
    decoder = PEER_DECODERS.get(kind)
    if decoder is None:
        raise CodecError(f"unknown frame kind {kind}")
    return decode_checked(kind, body, decoder)
