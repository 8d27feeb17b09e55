"""The frame format, and the frames a client and a store exchange.

A frame is one version byte, one kind byte, then one msgpack object:

| kind        | body                                                                 |
| ----------- | -------------------------------------------------------------------- |
| REQUEST (2) | [request_id, op, args]  — client to store; args is a map             |
| REPLY (3)   | [request_id, true, result]  or  [request_id, false, [kind, msg, detail]] |
| REQUESTS (6)| [request, ...]  — many REQUEST bodies in one frame (the client sends |
|             |  every request of one event-loop pass to a store at once); one bad  |
|             |  item rejects the whole frame (only a broken client sends one)      |
| REPLIES (7) | [reply, ...]  — a turn's answers to one client's REQUESTS frames     |

Kinds 1, 4 and 5 are store-to-store frames (`multiraft.transport.codec`).
Decoding never trusts its input: sizes are bounded, every field's type is
checked, and anything off raises `CodecError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgpack

from ..errors import ERRORS_BY_NAME, MultiraftError, NotLeader, StoreError

VERSION = 1
KIND_PEER = 1
KIND_REQUEST = 2
KIND_REPLY = 3
KIND_SNAP_CHUNK = 4
KIND_SNAP_ACK = 5
KIND_REQUESTS = 6
KIND_REPLIES = 7

T = TypeVar("T")

MAX_FRAME_SIZE = 64 * 1024 * 1024
"""The largest frame a store accepts (also set as ZeroMQ's MAXMSGSIZE)."""

MAX_BATCH_REQUESTS = 4096
"""Requests one REQUESTS frame may carry: one frame's work stays bounded."""


class CodecError(ValueError):
    """A frame that is not a valid multiraft frame."""


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


def pack_frame(kind: int, body: Any) -> bytes:
    return bytes((VERSION, kind)) + msgpack.packb(body, use_bin_type=True)


def encode_request(req: Request) -> bytes:
    return pack_frame(KIND_REQUEST, [req.request_id, req.op, req.args])


def encode_reply(rep: Reply) -> bytes:
    return pack_frame(KIND_REPLY, [rep.request_id, rep.ok, rep.result])


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
    frames: list[bytes] = []
    run: list[bytes] = []
    size = 0
    for body in packed:
        if run and size + len(body) > max_bytes:
            frames.append(encode_batch(kind, run))
            run, size = [], 0
        run.append(body)
        size += len(body)
    if run:
        frames.append(encode_batch(kind, run))
    return frames


ClientFrame = Request | Reply | RequestBatch | ReplyBatch


def reply_body(result: Any) -> tuple[bool, Any]:
    """(ok, body) of a REPLY: a result is a value, or the `MultiraftError`
    the request failed with, which travels as [kind, message, detail]."""
    if isinstance(result, MultiraftError):
        return False, error_to_wire(result)
    return True, result


def error_to_wire(e: MultiraftError) -> list[Any]:
    return [type(e).__name__, str(e), e.detail]


def error_from_wire(body: Any) -> MultiraftError:
    """The exception a [kind, message, detail] error body stands for (a
    malformed one or an unknown kind: StoreError)."""
    if not (isinstance(body, list | tuple) and len(body) >= 2):
        return StoreError(f"malformed error reply: {body!r:.200}")
    kind, message = body[0], str(body[1])
    detail = body[2] if len(body) > 2 and isinstance(body[2], dict) else {}
    cls = ERRORS_BY_NAME.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return StoreError(f"{kind}: {message}", detail)
    if cls is NotLeader:
        leader = detail.get("leader")
        return NotLeader(message, leader if isinstance(leader, int) else None, detail)
    return cls(message, detail)


def decode_body(frame: bytes) -> tuple[int, Any]:
    """(kind, msgpack body) of a frame whose size and version are right;
    raises CodecError otherwise."""
    if len(frame) < 3:
        raise CodecError("frame too short")
    if len(frame) > MAX_FRAME_SIZE:
        raise CodecError(f"frame of {len(frame)} bytes exceeds {MAX_FRAME_SIZE}")
    if frame[0] != VERSION:
        raise CodecError(f"unsupported frame version {frame[0]}")
    try:
        return frame[1], msgpack.unpackb(frame[2:], raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise CodecError(f"undecodable body: {e}") from None


def decode_checked(kind: int, body: Any, decoder: Callable[[Any], T]) -> T:
    """`decoder(body)`, with any type or shape error turned into CodecError."""
    try:
        return decoder(body)
    except CodecError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        raise CodecError(f"malformed frame of kind {kind}: {e}") from None


def decode_client_frame(frame: bytes) -> ClientFrame:
    """Decode a REQUEST(S) or REPLY/REPLIES frame; raises CodecError on
    anything malformed or of another kind."""
    kind, body = decode_body(frame)
    decoder = CLIENT_DECODERS.get(kind)
    if decoder is None:
        raise CodecError(f"unknown frame kind {kind}")
    return decode_checked(kind, body, decoder)


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise CodecError(what)


def is_uint(v: Any) -> bool:
    """A non-negative int (bool excluded: msgpack keeps them apart)."""
    return type(v) is int and v >= 0


def are_uints(values: Any) -> bool:
    """A list of non-negative ints, checked at C speed (a peer frame's
    coalesced heartbeats are one long list of them)."""
    return isinstance(values, list) and uints(values)


def uints(values: Sequence[Any]) -> bool:
    """Every value a non-negative int (bools excluded), for any sequence."""
    return set(map(type, values)) <= _INT and (not values or min(values) >= 0)


_INT = frozenset((int,))


def _request(body: Any) -> Request:
    expect(isinstance(body, list) and len(body) == 3, "request must be a 3-list")
    request_id, op, args = body
    expect(is_uint(request_id), "bad request id")
    expect(isinstance(op, str), "bad request op")
    expect(isinstance(args, dict), "request args must be a map")
    return Request(request_id, op, args)


def _reply(body: Any) -> Reply:
    expect(isinstance(body, list) and len(body) == 3, "reply must be a 3-list")
    request_id, ok, result = body
    expect(is_uint(request_id) and isinstance(ok, bool), "bad reply")
    return Reply(request_id, ok, result)


def _request_batch(body: Any) -> RequestBatch:
    expect(isinstance(body, list), "a request batch must be a list")
    expect(len(body) <= MAX_BATCH_REQUESTS, f"over {MAX_BATCH_REQUESTS} requests")
    return RequestBatch([_request(item) for item in body])


def _reply_batch(body: Any) -> ReplyBatch:
    expect(isinstance(body, list), "a reply batch must be a list")
    return ReplyBatch([_reply(item) for item in body])


CLIENT_DECODERS: dict[int, Callable[[Any], ClientFrame]] = {
    KIND_REQUEST: _request,
    KIND_REPLY: _reply,
    KIND_REQUESTS: _request_batch,
    KIND_REPLIES: _reply_batch,
}
