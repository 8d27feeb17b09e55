from __future__ import annotations

import json

import msgpack
import pytest

from multiraft.protocol.region import LEARNER, VOTER, Epoch, PeerMeta, Region

PEERS = (PeerMeta(1, 11), PeerMeta(2, 12), PeerMeta(3, 13, LEARNER))


def region(start: bytes = b"b", end: bytes = b"m", **kw) -> Region:
    return Region(7, start, end, kw.pop("epoch", Epoch(3, 2)), kw.pop("peers", PEERS))


def test_epoch_defaults_and_wire() -> None:
    assert Epoch() == Epoch(1, 1)
    assert Epoch.from_wire(Epoch(5, 6).to_wire()) == Epoch(5, 6)
    with pytest.raises(TypeError):
        Epoch.from_wire(["1", 1])
    with pytest.raises(ValueError):
        Epoch.from_wire([1])


def test_contains_is_start_inclusive_end_exclusive() -> None:
    r = region(b"b", b"m")
    assert r.contains(b"b")
    assert r.contains(b"b\x00")
    assert r.contains(b"l\xff\xff")
    assert not r.contains(b"m")
    assert not r.contains(b"a\xff")
    assert not r.contains(b"")


def test_contains_with_empty_end_is_unbounded() -> None:
    r = region(b"m", b"")
    assert r.contains(b"m")
    assert r.contains(b"\xff" * 100)
    assert not r.contains(b"l")
    whole = Region(1)
    assert whole.contains(b"") and whole.contains(b"anything") and whole.contains(b"\xff")


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ((b"a", b"c"), (b"b", b"d"), True),
        ((b"a", b"c"), (b"c", b"d"), False),
        ((b"a", b""), (b"z", b""), True),
        ((b"", b"b"), (b"b", b""), False),
        ((b"", b""), (b"x", b"y"), True),
    ],
)
def test_overlaps_is_symmetric(a: tuple, b: tuple, overlap: bool) -> None:
    ra, rb = Region(1, *a), Region(2, *b)
    assert ra.overlaps(rb) is overlap
    assert rb.overlaps(ra) is overlap


def test_peer_lookups() -> None:
    r = region()
    assert r.peer_on(2) == PeerMeta(2, 12, VOTER)
    assert r.peer_on(4) is None
    assert r.peer_by_id(13) == PeerMeta(3, 13, LEARNER)
    assert r.peer_by_id(3) is None
    assert Region(1).peer_on(1) is None


def test_with_epoch_and_is_newer_than() -> None:
    r = region()
    split = r.with_epoch(version=4)
    assert split.epoch == Epoch(4, 2) and r.epoch == Epoch(3, 2)
    assert split.is_newer_than(r) and not r.is_newer_than(split)
    assert r.with_epoch(conf_ver=3).is_newer_than(r)
    assert not r.is_newer_than(r)


def test_wire_round_trip_through_msgpack() -> None:
    r = region(b"\x00\xff", b"")
    wire = msgpack.unpackb(msgpack.packb(r.to_wire()))
    assert wire == [
        7,
        b"\x00\xff",
        b"",
        [3, 2],
        [[1, 11, "voter"], [2, 12, "voter"], [3, 13, "learner"]],
    ]
    assert Region.from_wire(wire) == r


@pytest.mark.parametrize(
    "wire",
    [
        ["7", b"", b"", [1, 1], []],
        [7, "a", b"", [1, 1], []],
        [7, b"", None, [1, 1], []],
        [7, b"", b"", ["1", 1], []],
    ],
)
def test_from_wire_refuses_wrong_types(wire: list) -> None:
    with pytest.raises(TypeError):
        Region.from_wire(wire)


def test_from_wire_refuses_wrong_shapes() -> None:
    with pytest.raises(ValueError):
        Region.from_wire([7, b"", b"", [1, 1]])
    with pytest.raises(ValueError):
        Region.from_wire([7, b"", b"", [1, 1], [[1, 2]]])


def test_to_json_matches_the_interface() -> None:
    obj = region(b"", b"m").to_json(leader_store=2)
    assert obj == {
        "id": 7,
        "start": "",
        "end": "m",
        "epoch": {"version": 3, "conf_ver": 2},
        "peers": [
            {"store_id": 1, "peer_id": 11, "role": "voter"},
            {"store_id": 2, "peer_id": 12, "role": "voter"},
            {"store_id": 3, "peer_id": 13, "role": "learner"},
        ],
        "leader": 2,
    }
    assert json.loads(json.dumps(obj)) == obj


def test_to_json_without_leader_and_empty_bounds() -> None:
    obj = Region(1, peers=(PeerMeta(1, 1),)).to_json(None)
    assert obj["leader"] is None
    assert (obj["start"], obj["end"]) == ("", "")
    assert "null" in json.dumps(obj)


def test_to_json_keys_utf8_and_hex() -> None:
    r = region("é".encode(), b"\x00\xff")
    assert r.to_json(1)["start"] == "é"
    assert isinstance(r.to_json(1)["end"], str)  # not UTF-8, still JSON text
    json.dumps(r.to_json(1))
    hexed = r.to_json(1, hex_keys=True)
    assert (hexed["start"], hexed["end"]) == ("c3a9", "00ff")
    assert Region(1).to_json(None, hex_keys=True)["end"] == ""


@pytest.mark.parametrize(
    "peers",
    [[[1.0, 2, "voter"]], [[1, float("inf"), "voter"]], [[1, 2, "witness"]], [[1, 2]]],
)
def test_descriptors_with_malformed_peers_are_refused(peers: list) -> None:
    with pytest.raises((TypeError, ValueError)):
        Region.from_wire([7, b"", b"", [1, 1], peers])
