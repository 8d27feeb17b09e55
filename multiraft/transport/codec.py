"""Wire encoding of every frame a store sends or receives.

A frame is one version byte, one kind byte, then one msgpack object:

| kind       | body                                                                 |
| ---------- | -------------------------------------------------------------------- |
| PEER (1)   | [cluster_id, from_store_id, [[region_id, epoch, raft_message,        |
|            |  region], ...], extras]  — all Raft traffic from one store to       |
|            |  another in one turn; `region` is the sender's descriptor, so a     |
|            |  store that has no replica of it yet can create one                 |
| REQUEST (2)| [request_id, op, args]  — client to store; args is a map            |
| REPLY (3)  | [request_id, ok, result]  or  [request_id, false, [kind, msg, detail]]|
| REQUESTS(6)| [request, ...]  — many REQUEST bodies in one frame (the client sends |
|            |  every request of one event-loop pass to a store at once); one bad |
|            |  item rejects the whole frame (only a broken client sends one)     |
| REPLIES (7)| [reply, ...]  — a turn's answers to one client's REQUESTS frames    |
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

from dataclasses import dataclass, field
from typing import Any

import msgpack

from ..raft.types import Message, MessageType

VERSION = 1
KIND_PEER = 1
KIND_REQUEST = 2
KIND_REPLY = 3
KIND_SNAP_CHUNK = 4
KIND_SNAP_ACK = 5
KIND_REQUESTS = 6
KIND_REPLIES = 7

MAX_FRAME_SIZE = 64 * 1024 * 1024
"""The largest frame a store accepts (also set as ZeroMQ's MAXMSGSIZE)."""


MAX_BATCH_REQUESTS = 4096
"""Requests one REQUESTS frame may carry: one frame's work stays bounded."""


class CodecError(ValueError):
    """A frame that is not a valid multiraft frame."""


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


@dataclass(slots=True)
class Request:
    request_id: int
    op: str
    args: dict[str, Any]


@dataclass(slots=True)
class Reply:
    request_id: int
    ok: bool
    result: Any = None
    """The result if ok, else [error kind, message, detail]."""


@dataclass(slots=True)
class RequestBatch:
    requests: list[Request]


@dataclass(slots=True)
class ReplyBatch:
    replies: list[Reply]


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


def _pack(kind: int, body: Any) -> bytes:
    return bytes((VERSION, kind)) + msgpack.packb(body, use_bin_type=True)


def _item_wire(it: RaftItem) -> list:
    return [it.region_id, list(it.epoch), it.message.to_wire(), it.region]


def encode_peer_batch(batch: PeerBatch) -> bytes:
    items = [_item_wire(it) for it in batch.items]
    return _pack(KIND_PEER, [batch.cluster_id, batch.from_store, items, batch.extras])


def encode_snap_chunk(c: SnapChunk) -> bytes:
    item = None if c.item is None else _item_wire(c.item)
    body = [c.cluster_id, c.from_store, c.region_id, c.transfer_id, c.seq, c.pairs, c.done, item]
    return _pack(KIND_SNAP_CHUNK, body)


def encode_snap_ack(a: SnapAck) -> bytes:
    return _pack(KIND_SNAP_ACK, [a.cluster_id, a.from_store, a.transfer_id, a.seq, a.ok])


def encode_request(req: Request) -> bytes:
    return _pack(KIND_REQUEST, [req.request_id, req.op, req.args])


def encode_reply(rep: Reply) -> bytes:
    return _pack(KIND_REPLY, [rep.request_id, rep.ok, rep.result])


def pack_request(req: Request) -> bytes:
    """One request's body, for `encode_batch(KIND_REQUESTS, ...)`."""
    return msgpack.packb([req.request_id, req.op, req.args], use_bin_type=True)


def pack_reply(request_id: int, ok: bool, result: Any) -> bytes:
    """One reply's body, for `encode_batch(KIND_REPLIES, ...)`."""
    return msgpack.packb([request_id, ok, result], use_bin_type=True)


def encode_batch(kind: int, packed: list[bytes]) -> bytes:
    """A REQUESTS or REPLIES frame from bodies packed one by one: a msgpack
    array is its header followed by its items, so the senders can size a
    batch exactly as it grows and never encode anything twice."""
    n = len(packed)
    if n < 16:
        header = bytes((0x90 | n,))
    elif n < 1 << 16:
        header = b"\xdc" + n.to_bytes(2, "big")
    else:
        header = b"\xdd" + n.to_bytes(4, "big")
    return b"".join((bytes((VERSION, kind)), header, *packed))


def batch_frames(kind: int, packed: list[bytes], max_bytes: int) -> list[bytes]:
    """Frames of `kind` carrying `packed` in order, each of about `max_bytes`
    at most (a body bigger than that goes alone)."""
    frames, run, size = [], [], 0
    for body in packed:
        if run and size + len(body) > max_bytes:
            frames.append(encode_batch(kind, run))
            run, size = [], 0
        run.append(body)
        size += len(body)
    if run:
        frames.append(encode_batch(kind, run))
    return frames


Frame = PeerBatch | Request | Reply | RequestBatch | ReplyBatch | SnapChunk | SnapAck


def decode(frame: bytes) -> Frame:
    """Decode any frame; raises CodecError on anything malformed."""
    if len(frame) < 3:
        raise CodecError("frame too short")
    if len(frame) > MAX_FRAME_SIZE:
        raise CodecError(f"frame of {len(frame)} bytes exceeds {MAX_FRAME_SIZE}")
    if frame[0] != VERSION:
        raise CodecError(f"unsupported frame version {frame[0]}")
    kind = frame[1]
    try:
        body = msgpack.unpackb(frame[2:], raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise CodecError(f"undecodable body: {e}") from None
    try:
        if kind == KIND_PEER:
            return _peer_batch(body)
        if kind == KIND_REQUEST:
            return _request(body)
        if kind == KIND_REPLY:
            return _reply(body)
        if kind == KIND_REQUESTS:
            _expect(isinstance(body, list), "a request batch must be a list")
            _expect(len(body) <= MAX_BATCH_REQUESTS, f"over {MAX_BATCH_REQUESTS} requests")
            return RequestBatch([_request(item) for item in body])
        if kind == KIND_REPLIES:
            _expect(isinstance(body, list), "a reply batch must be a list")
            return ReplyBatch([_reply(item) for item in body])
        if kind == KIND_SNAP_CHUNK:
            return _snap_chunk(body)
        if kind == KIND_SNAP_ACK:
            return _snap_ack(body)
    except CodecError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        raise CodecError(f"malformed frame of kind {kind}: {e}") from None
    raise CodecError(f"unknown frame kind {kind}")


def _expect(cond: bool, what: str) -> None:
    if not cond:
        raise CodecError(what)


def _uint(v: Any) -> bool:
    """A non-negative int (bool excluded: msgpack keeps them apart)."""
    return type(v) is int and v >= 0


def _uints(values: Any) -> bool:
    return isinstance(values, list) and all(_uint(v) for v in values)


def _peer_batch(body: Any) -> PeerBatch:
    _expect(isinstance(body, list) and len(body) == 4, "peer batch must be a 4-list")
    cluster_id, from_store, items, extras = body
    _expect(_uint(cluster_id) and _uint(from_store), "bad peer ids")
    _expect(isinstance(items, list) and isinstance(extras, dict), "bad peer batch")
    return PeerBatch(cluster_id, from_store, [_raft_item(item) for item in items], extras)


def _raft_item(item: Any) -> RaftItem:
    _expect(isinstance(item, list) and len(item) == 4, "raft item must be a 4-list")
    region_id, epoch, wire, region = item
    _expect(_uint(region_id) and region_id > 0, "bad region id")
    _expect(_uints(epoch) and len(epoch) == 2, "bad epoch")
    _expect(region is None or isinstance(region, list), "bad region descriptor")
    return RaftItem(region_id, (epoch[0], epoch[1]), _message(wire), region)


def _snap_chunk(body: Any) -> SnapChunk:
    _expect(isinstance(body, list) and len(body) == 8, "snapshot chunk must be an 8-list")
    cluster_id, from_store, region_id, transfer_id, seq, pairs, done, item = body
    _expect(_uints([cluster_id, from_store, transfer_id, seq]), "bad snapshot chunk ids")
    _expect(_uint(region_id) and region_id > 0, "bad region id")
    _expect(isinstance(pairs, list) and len(pairs) % 2 == 0, "chunk pairs must be an even list")
    _expect(all(isinstance(b, bytes) for b in pairs), "chunk keys and values must be bytes")
    _expect(type(done) is bool, "bad chunk done flag")
    _expect((item is None) == (seq != 0), "chunk 0, and only chunk 0, carries the MsgSnap")
    raft_item = None
    if item is not None:
        raft_item = _raft_item(item)
        m = raft_item.message
        _expect(raft_item.region_id == region_id, "chunk and MsgSnap regions differ")
        _expect(m.type == MessageType.SNAP and m.snapshot is not None, "chunk 0 needs a MsgSnap")
    return SnapChunk(cluster_id, from_store, region_id, transfer_id, seq, pairs, done, raft_item)


def _snap_ack(body: Any) -> SnapAck:
    _expect(isinstance(body, list) and len(body) == 5, "snapshot ack must be a 5-list")
    cluster_id, from_store, transfer_id, seq, ok = body
    _expect(_uints([cluster_id, from_store, transfer_id, seq]), "bad snapshot ack ids")
    _expect(type(ok) is bool, "bad snapshot ack flag")
    return SnapAck(cluster_id, from_store, transfer_id, seq, ok)


def _message(wire: Any) -> Message:
    _expect(isinstance(wire, list) and len(wire) == 12, "raft message must be a 12-list")
    _expect(_uints([wire[i] for i in (0, 1, 2, 3, 4, 5, 7, 10)]), "bad raft message field")
    _expect(isinstance(wire[6], list), "bad raft entries")
    for e in wire[6]:
        _expect(
            isinstance(e, list) and len(e) == 4 and _uints(e[:3]) and isinstance(e[3], bytes),
            "bad raft entry",
        )
    _expect(type(wire[9]) is bool, "bad raft reject flag")
    _expect(isinstance(wire[11], bytes), "bad raft context")
    if wire[8] is not None:
        _check_snapshot(wire[8])
    return Message.from_wire(wire)


def _check_snapshot(snap: Any) -> None:
    _expect(isinstance(snap, list) and len(snap) == 2 and isinstance(snap[0], bytes), "bad snap")
    meta = snap[1]
    _expect(isinstance(meta, list) and len(meta) == 3 and _uints(meta[1:]), "bad snap metadata")
    cs = meta[0]
    _expect(isinstance(cs, list) and len(cs) == 2 and all(_uints(ids) for ids in cs), "bad conf")


def _request(body: Any) -> Request:
    _expect(isinstance(body, list) and len(body) == 3, "request must be a 3-list")
    request_id, op, args = body
    _expect(_uint(request_id), "bad request id")
    _expect(isinstance(op, str), "bad request op")
    _expect(isinstance(args, dict), "request args must be a map")
    return Request(request_id, op, args)


def _reply(body: Any) -> Reply:
    _expect(isinstance(body, list) and len(body) == 3, "reply must be a 3-list")
    request_id, ok, result = body
    _expect(_uint(request_id) and isinstance(ok, bool), "bad reply")
    return Reply(request_id, ok, result)
