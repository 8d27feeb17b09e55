from __future__ import annotations

import contextlib
import math
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multiraft.protocol import wire
from multiraft.protocol.wire import (
    KIND_PEER,
    KIND_REPLIES,
    KIND_REPLY,
    KIND_REQUEST,
    KIND_REQUESTS,
    VERSION,
    CodecError,
    Reply,
    ReplyBatch,
    Request,
    RequestBatch,
    encode_batch,
    encode_reply,
    encode_request,
    pack_reply,
    pack_request,
)
from multiraft.raft.types import (
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)
from multiraft.transport.codec import (
    QUIESCE,
    RESPONSE,
    PeerBatch,
    RaftItem,
    decode,
    encode_peer_batch,
)

REGION_WIRE = [1, b"", b"m", [2, 1], [[1, 1, "voter"], [2, 2, "voter"]]]


def frame(kind: int, body: Any, version: int = VERSION) -> bytes:
    return bytes((version, kind)) + msgpack.packb(body, use_bin_type=True)


def app_message() -> Message:
    return Message(
        MessageType.APP,
        to=2,
        frm=1,
        term=3,
        log_term=2,
        index=7,
        entries=[
            Entry(3, 8, EntryType.NORMAL, b"data"),
            Entry(3, 9, EntryType.CONF_CHANGE, b"\x00\xff"),
            Entry(3, 10),
        ],
        commit=7,
        context=b"ctx",
    )


def snap_message() -> Message:
    meta = SnapshotMetadata(ConfState((1, 2, 3), (4,)), index=100, term=5)
    return Message(MessageType.SNAP, to=3, frm=1, term=5, snapshot=Snapshot(b"\x00snapshot", meta))


def message_wire(**changes: Any) -> list:
    """A valid APP message in wire form, with fields replaced by position name."""
    names = [
        "type",
        "to",
        "frm",
        "term",
        "log_term",
        "index",
        "entries",
        "commit",
        "snapshot",
        "reject",
        "reject_hint",
        "context",
    ]
    wire = app_message().to_wire()
    for name, value in changes.items():
        wire[names.index(name)] = value
    return wire


def peer_body(item: list | None = None, **changes: Any) -> list:
    item = item if item is not None else [1, [1, 1], message_wire(), None]
    body = {"cluster_id": 7, "from_store": 1, "items": [item], "extras": {}, "beats": []}
    body.update(changes)
    return list(body.values())


# -- round trips ---------------------------------------------------------------


def test_peer_batch_round_trip_with_entries_snapshots_and_extras() -> None:
    batch = PeerBatch(
        cluster_id=2**62,
        from_store=3,
        items=[
            RaftItem(1, (2, 1), app_message(), REGION_WIRE),
            RaftItem(2**40, (1, 5), snap_message()),
            RaftItem(3, (1, 1), Message(MessageType.HEARTBEAT, to=2, frm=1, term=1)),
        ],
        extras={"regions": [[REGION_WIRE, 1]], "stats": {"n": 1.5}},
        beats=[1, 10, 20, 5, 9, QUIESCE, 2**40, 21, 11, 5, 0, RESPONSE],
    )
    out = decode(encode_peer_batch(batch))
    assert out == batch
    assert isinstance(out, PeerBatch)
    assert out.items[1].message.snapshot == snap_message().snapshot
    assert out.items[0].message.entries[1].type is EntryType.CONF_CHANGE


def test_empty_peer_batch_round_trip() -> None:
    batch = PeerBatch(1, 2)
    assert decode(encode_peer_batch(batch)) == batch


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"region": 1, "epoch": [1, 1], "key": b"k", "value": b"\x00" * 100},
        {"region": 1, "epoch": [1, 1], "key": b"", "expected": None, "new": b"n"},
        {"nested": {"list": [1, "two", b"three", None, True, 1.5]}},
    ],
)
def test_request_round_trip(args: dict) -> None:
    req = Request(12345, "put", args)
    assert decode(encode_request(req)) == req


@pytest.mark.parametrize(
    "reply",
    [
        Reply(1, True, None),
        Reply(2, True, b"value"),
        Reply(3, True, [[b"a", b"1"], [b"b", b"2"]]),
        Reply(
            4, False, ["NotLeader", "region 1: not leader", {"leader": 2, "region": REGION_WIRE}]
        ),
        Reply(2**63 - 1, True, {"regions": [], "stores": {1: "127.0.0.1:1"}}),
    ],
)
def test_reply_round_trip(reply: Reply) -> None:
    assert decode(encode_reply(reply)) == reply


def test_reply_result_defaults_to_none() -> None:
    assert decode(encode_reply(Reply(9, True))) == Reply(9, True, None)


@pytest.mark.parametrize("n", [0, 1, 15, 16, 65_535, 65_536])
def test_batches_round_trip_across_msgpack_array_header_sizes(n: int) -> None:
    """The batch header is written by hand: each of msgpack's three array
    header forms (fixarray, array16, array32) must decode to the same items."""
    requests = [Request(i, "get", {"key": i.to_bytes(4, "big")}) for i in range(n)]
    frame_ = encode_batch(KIND_REQUESTS, [pack_request(r) for r in requests])
    if n <= wire.MAX_BATCH_REQUESTS:
        assert decode(frame_) == RequestBatch(requests)
    else:
        assert msgpack.unpackb(frame_[2:], raw=False) == [
            [r.request_id, r.op, r.args] for r in requests
        ]
    replies = [
        Reply(i, i % 2 == 0, b"v" if i % 2 == 0 else ["NotLeader", "m", {}]) for i in range(n)
    ]
    frame_ = encode_batch(KIND_REPLIES, [pack_reply(r.request_id, r.ok, r.result) for r in replies])
    assert decode(frame_) == ReplyBatch(replies)


def test_batch_frames_split_by_size_and_keep_order() -> None:
    bodies = [pack_reply(i, True, b"x" * 100) for i in range(50)]
    frames = wire.batch_frames(KIND_REPLIES, bodies, 1000)
    assert len(frames) == 6  # 9 bodies of 105 bytes fit in 1,000
    decoded = [r for f in frames for r in decode(f).replies]
    assert [r.request_id for r in decoded] == list(range(50))
    big = pack_reply(99, True, b"y" * 5000)
    assert len(wire.batch_frames(KIND_REPLIES, [big, *bodies[:2]], 1000)) == 2
    assert wire.batch_frames(KIND_REPLIES, [], 1000) == []


def test_a_request_batch_over_the_bound_is_rejected() -> None:
    request = [1, "get", {"key": b"k"}]
    assert decode(frame(KIND_REQUESTS, [request] * wire.MAX_BATCH_REQUESTS))
    with pytest.raises(CodecError, match="requests"):
        decode(frame(KIND_REQUESTS, [request] * (wire.MAX_BATCH_REQUESTS + 1)))


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (KIND_REQUESTS, {"not": "a list"}),
        (KIND_REQUESTS, [[1, "get", {}], [2, "get"]]),
        (KIND_REQUESTS, [[1, "get", {}], "x"]),
        (KIND_REPLIES, [[1, True, None], [-1, True, None]]),
        (KIND_REPLIES, 5),
    ],
)
def test_a_batch_with_one_bad_item_is_rejected_whole(kind: int, body: Any) -> None:
    with pytest.raises(CodecError):
        decode(frame(kind, body))


# -- rejects -------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x02"])
def test_empty_and_short_frames(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode(data)


@pytest.mark.parametrize("version", [0, 2, 255])
def test_wrong_version(version: int) -> None:
    with pytest.raises(CodecError, match="version"):
        decode(frame(KIND_REQUEST, [1, "get", {}], version=version))


@pytest.mark.parametrize("kind", [0, 8, 255])
def test_unknown_kind(kind: int) -> None:
    with pytest.raises(CodecError, match="kind"):
        decode(frame(kind, [1, "get", {}]))


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # never used in msgpack
        b"\x93\x01",  # array of 3 with one element
        b"\x92\x01\x02\x03",  # trailing data
        b"\xd9\x05ab",  # truncated str
        b"\x91" * 5000 + b"\xc0",  # nested past the unpacker's stack
        b"\x81\x91\x01\x01",  # a map keyed by an (unhashable) list
    ],
)
def test_non_msgpack_body(body: bytes) -> None:
    for kind in (KIND_PEER, KIND_REQUEST, KIND_REPLY):
        with pytest.raises(CodecError):
            decode(bytes((VERSION, kind)) + body)


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (KIND_PEER, None),
        (KIND_PEER, {"not": "a list"}),
        (KIND_PEER, [1, 1, []]),
        (KIND_PEER, [1, 1, [], {}, 5]),
        (KIND_PEER, [1, 1, {}, {}]),
        (KIND_PEER, [1, 1, [], []]),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire()])),
        (KIND_PEER, peer_body(item="item")),
        (KIND_PEER, peer_body(item=[1, [1], message_wire(), None])),
        (KIND_PEER, peer_body(item=[1, 5, message_wire(), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire()[:11], None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], {"type": 3}, None])),
        (KIND_REQUEST, [1, "get"]),
        (KIND_REQUEST, "request"),
        (KIND_REQUEST, [1, "get", {}, 4]),
        (KIND_REPLY, [1, True]),
        (KIND_REPLY, {1: True}),
    ],
)
def test_msgpack_of_wrong_shapes(kind: int, body: Any) -> None:
    with pytest.raises(CodecError):
        decode(frame(kind, body))


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (KIND_PEER, peer_body(cluster_id="7")),
        (KIND_PEER, peer_body(beats=[1, 2, 3, 4, 5])),  # not whole heartbeats
        (KIND_PEER, peer_body(beats=[0, 2, 3, 4, 5, 0])),  # region 0
        (KIND_PEER, peer_body(beats=[1, 2, 3, -4, 5, 0])),
        (KIND_PEER, peer_body(beats=[1, 2, 3, 4, 5, "quiesce"])),
        (KIND_PEER, peer_body(beats="beats")),
        (KIND_PEER, peer_body()[:4]),  # the 4-list of before heartbeats were coalesced
        (KIND_PEER, peer_body(from_store=None)),
        (KIND_PEER, peer_body(item=[b"1", [1, 1], message_wire(), None])),
        (KIND_PEER, peer_body(item=[1.0, [1, 1], message_wire(), None])),
        (KIND_PEER, peer_body(item=[1, ["a", 1], message_wire(), None])),
        (KIND_PEER, peer_body(item=[1, [None, 1], message_wire(), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(), "descriptor"])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(type=99), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(type="APP"), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(to="2"), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(term=1.5), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(commit=None), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(term=True), None])),
        (KIND_PEER, peer_body(item=[1, [True, 1], message_wire(), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(entries=[[1, False, 0, b""]]), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(entries={}), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(entries=[[1, 1, 0]]), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(entries=[[1, 1, 0, "s"]]), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(entries=[[1, 1, 9, b""]]), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(context="ctx"), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(snapshot=5), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(snapshot=[b"", 5]), None])),
        (KIND_PEER, peer_body(item=[1, [1, 1], message_wire(snapshot={"a": 1}), None])),
        (KIND_REQUEST, [1.0, "get", {}]),
        (KIND_REQUEST, ["1", "get", {}]),
        (KIND_REQUEST, [1, b"get", {}]),
        (KIND_REQUEST, [1, 7, {}]),
        (KIND_REQUEST, [1, "get", [1, 2]]),
        (KIND_REPLY, [1, 1, None]),
        (KIND_REPLY, [None, True, None]),
    ],
)
def test_wrong_field_types(kind: int, body: Any) -> None:
    with pytest.raises(CodecError):
        decode(frame(kind, body))


@pytest.mark.parametrize(
    "body",
    [
        peer_body(item=[0, [1, 1], message_wire(), None]),
        peer_body(item=[-1, [1, 1], message_wire(), None]),
        peer_body(item=[1, [1, 1], message_wire(to=-2), None]),
        peer_body(item=[1, [1, 1], message_wire(frm=-1), None]),
        peer_body(item=[1, [1, 1], message_wire(term=-1), None]),
        peer_body(item=[1, [1, 1], message_wire(index=-1), None]),
        peer_body(item=[1, [1, 1], message_wire(reject_hint=-1), None]),
    ],
)
def test_negative_region_and_message_ids(body: list) -> None:
    with pytest.raises(CodecError):
        decode(frame(KIND_PEER, body))


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (KIND_PEER, peer_body(cluster_id=-1)),
        (KIND_PEER, peer_body(from_store=-1)),
        (KIND_REQUEST, [-1, "get", {}]),
    ],
)
def test_negative_frame_ids(kind: int, body: list) -> None:
    with pytest.raises(CodecError):
        decode(frame(kind, body))


@pytest.mark.parametrize("bad", [math.inf, -math.inf])
def test_infinite_epoch_is_a_codec_error(bad: float) -> None:
    with pytest.raises(CodecError):
        decode(frame(KIND_PEER, peer_body(item=[1, [bad, 1], message_wire(), None])))


def test_float_epoch_is_refused() -> None:
    with pytest.raises(CodecError):
        decode(frame(KIND_PEER, peer_body(item=[1, [1.5, 1], message_wire(), None])))


@pytest.mark.parametrize(
    "entry", [["x", 8, 0, b""], [3, None, 0, b""], [-1, 8, 0, b""], [3, -8, 0, b""]]
)
def test_bad_entry_term_or_index(entry: list) -> None:
    with pytest.raises(CodecError):
        decode(frame(KIND_PEER, peer_body(item=[1, [1, 1], message_wire(entries=[entry]), None])))


@pytest.mark.parametrize(
    "snapshot",
    [
        [5, [[[1], []], 100, 5]],  # data not bytes
        [b"", [[[1], []], "100", 5]],  # index not an int
        [b"", [[[1], []], 100, -5]],  # negative term
        [b"", [[["a"], []], 100, 5]],  # voter ids not ints
    ],
)
def test_bad_snapshot_fields(snapshot: list) -> None:
    with pytest.raises(CodecError):
        decode(frame(KIND_PEER, peer_body(item=[1, [1, 1], message_wire(snapshot=snapshot), None])))


def test_oversize_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    good = encode_request(Request(1, "put", {"value": b"x" * 100}))
    monkeypatch.setattr(wire, "MAX_FRAME_SIZE", len(good) - 1)
    with pytest.raises(CodecError, match="exceeds"):
        decode(good)
    monkeypatch.setattr(wire, "MAX_FRAME_SIZE", len(good))
    assert isinstance(decode(good), Request)


def test_oversize_frame_at_the_real_limit() -> None:
    with pytest.raises(CodecError, match="exceeds"):
        decode(bytes((VERSION, KIND_REQUEST)) + bytes(wire.MAX_FRAME_SIZE))


# -- fuzz ----------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=10),
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.integers(-3, 3) | st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=30,
)


def decode_or_codec_error(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        decode(data)


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_codec_error(data: bytes) -> None:
    decode_or_codec_error(data)


@FUZZ
@given(
    st.sampled_from([KIND_PEER, KIND_REQUEST, KIND_REPLY, KIND_REQUESTS, KIND_REPLIES, 0, 9]),
    msgpack_values,
)
def test_arbitrary_msgpack_after_a_valid_header_only_raises_codec_error(
    kind: int, body: Any
) -> None:
    decode_or_codec_error(frame(kind, body))


finite = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=4)
finite |= st.binary(max_size=4) | st.floats(allow_nan=False, allow_infinity=False)
finite_values = st.recursive(finite, lambda c: st.lists(c, max_size=4), max_leaves=12)


@FUZZ
@given(st.integers(0, 3), st.integers(0, 11), finite_values, st.integers(0, 3))
def test_one_field_of_a_valid_peer_batch_replaced(
    level: int, position: int, value: Any, item_pos: int
) -> None:
    """Structured fuzz: a valid frame with one field anywhere in it replaced by
    any (finite) value decodes or raises CodecError, nothing else."""
    body = peer_body()
    if level == 0:
        body[position % 4] = value
    elif level == 1:
        body[2][0][item_pos] = value
    elif level == 2:
        body[2][0][2][position] = value
    else:
        body[2][0][2][6][0][item_pos] = value
    decode_or_codec_error(frame(KIND_PEER, body))
