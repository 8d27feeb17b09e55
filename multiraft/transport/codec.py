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

Decoding never trusts its input: sizes are bounded, every field's type is
checked, and anything off raises `CodecError` (the store logs and drops it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

from ..raft.types import Message

VERSION = 1
KIND_PEER = 1
KIND_REQUEST = 2
KIND_REPLY = 3

MAX_FRAME_SIZE = 64 * 1024 * 1024
"""The largest frame a store accepts (also set as ZeroMQ's MAXMSGSIZE)."""


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


def _pack(kind: int, body: Any) -> bytes:
    return bytes((VERSION, kind)) + msgpack.packb(body, use_bin_type=True)


def encode_peer_batch(batch: PeerBatch) -> bytes:
    items = [[it.region_id, list(it.epoch), it.message.to_wire(), it.region] for it in batch.items]
    return _pack(KIND_PEER, [batch.cluster_id, batch.from_store, items, batch.extras])


def encode_request(req: Request) -> bytes:
    return _pack(KIND_REQUEST, [req.request_id, req.op, req.args])


def encode_reply(rep: Reply) -> bytes:
    return _pack(KIND_REPLY, [rep.request_id, rep.ok, rep.result])


def decode(frame: bytes) -> PeerBatch | Request | Reply:
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
    out = []
    for item in items:
        _expect(isinstance(item, list) and len(item) == 4, "raft item must be a 4-list")
        region_id, epoch, wire, region = item
        _expect(_uint(region_id) and region_id > 0, "bad region id")
        _expect(_uints(epoch) and len(epoch) == 2, "bad epoch")
        _expect(region is None or isinstance(region, list), "bad region descriptor")
        out.append(RaftItem(region_id, (epoch[0], epoch[1]), _message(wire), region))
    return PeerBatch(cluster_id, from_store, out, extras)


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
