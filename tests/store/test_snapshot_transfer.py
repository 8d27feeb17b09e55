"""The transfer state machines with a fake clock and a fake network."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from multiraft.protocol import wire
from multiraft.raft import SnapshotStatus
from multiraft.raft.types import ConfState, Message, MessageType, Snapshot, SnapshotMetadata
from multiraft.storage.ingest import read_staging
from multiraft.storage.snapshot import SnapshotHeader
from multiraft.store.snapshot_transfer import (
    Outcome,
    SnapshotReceiver,
    SnapshotSender,
    TransferConfig,
)
from multiraft.transport import codec

CLUSTER = 7
PAIRS = [b"k%04d" % i for i in range(40)]


class FakeSource:
    """Pairs k0000 -> v, each 10 bytes, read as a real source would."""

    def __init__(self, keys: list[bytes] = PAIRS) -> None:
        self.keys = list(keys)
        self.closed = False

    def next_chunk(self, max_bytes: int) -> tuple[list[bytes], bool]:
        flat: list[bytes] = []
        size = 0
        while self.keys and size < max_bytes:
            k = self.keys.pop(0)
            flat += [k, b"vvvv"]
            size += len(k) + 5
        return flat, not self.keys

    def close(self) -> None:
        self.closed = True


class Net:
    """Collects frames per destination store."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []

    def send(self, store_id: int, frame: bytes) -> None:
        self.frames.append((store_id, frame))

    def take(self) -> list:
        out = [codec.decode(f) for _, f in self.frames]
        self.frames = []
        return out


def item(start: bytes = b"k", end: bytes = b"l") -> codec.RaftItem:
    header = SnapshotHeader(b"desc", start, end, [b"c", b"s"])
    snap = Snapshot(header.encode(), SnapshotMetadata(ConfState((1, 2)), 50, 3))
    m = Message(MessageType.SNAP, to=2, frm=1, term=3, snapshot=snap)
    return codec.RaftItem(9, (1, 1), m, [9, b"k", b"l", [1, 1], []])


@pytest.fixture
def config() -> TransferConfig:
    return TransferConfig(chunk_bytes=50, window=3, timeout=10.0, max_sends=2, max_receives=2)


def sender(config: TransferConfig) -> SnapshotSender:
    return SnapshotSender(CLUSTER, 1, config, first_id=100)


def receiver(tmp_path: Path, config: TransferConfig) -> SnapshotReceiver:
    return SnapshotReceiver(CLUSTER, 2, str(tmp_path / "snap"), config)


def test_window_caps_unacked_chunks_and_each_chunk_is_capped(config: TransferConfig) -> None:
    s, net, source = sender(config), Net(), FakeSource()
    assert s.start(item(), 2, source, now=0.0)
    assert s.pump(0.0, net.send) == 3
    assert s.pump(1.0, net.send) == 0  # window full
    chunks = net.take()
    assert [c.seq for c in chunks] == [0, 1, 2]
    assert chunks[0].item is not None and chunks[1].item is None
    assert all(sum(map(len, c.pairs)) < 50 + 10 for c in chunks)
    s.on_ack(codec.SnapAck(CLUSTER, 2, 100, 0, True), now=1.0)
    assert s.pump(1.0, net.send) == 1
    assert [c.seq for c in net.take()] == [3]


def test_a_full_transfer_reaches_the_receiver_intact(tmp_path: Path, config) -> None:
    s, r, net, back = sender(config), receiver(tmp_path, config), Net(), Net()
    source = FakeSource()
    s.start(item(), 2, source, 0.0)
    received = None
    for step in range(100):
        s.pump(float(step), net.send)
        for c in net.take():
            got = r.on_chunk(c, float(step), back.send)
            received = received or got
        for a in back.take():
            s.on_ack(a, float(step))
        if received and not len(s):
            break
    assert received is not None and source.closed and len(r) == 0
    assert s.take_outcomes() == [Outcome(9, 2, SnapshotStatus.FINISH)]
    header = SnapshotHeader.decode(received.item.message.snapshot.data, staged=True)
    assert header.staged == os.path.basename(received.path)
    assert received.item.message.snapshot.metadata.index == 50
    flat = [b for chunk in read_staging(received.path) for b in chunk]
    assert flat[0::2] == PAIRS


def test_no_ack_within_the_timeout_fails_the_transfer(config: TransferConfig) -> None:
    s, net, source = sender(config), Net(), FakeSource()
    s.start(item(), 2, source, 0.0)
    s.pump(0.0, net.send)
    s.on_ack(codec.SnapAck(CLUSTER, 2, 100, 0, True), 5.0)  # progress moves the deadline
    s.pump(14.0, net.send)
    assert s.take_outcomes() == []
    s.pump(15.0, net.send)
    assert s.take_outcomes() == [Outcome(9, 2, SnapshotStatus.FAILURE)]
    assert source.closed and len(s) == 0


def test_undeliverable_refused_and_over_the_cap_fail(config: TransferConfig) -> None:
    s, net = sender(config), Net()
    first, other = FakeSource(), FakeSource()
    s.start(item(), 2, first, 0.0)
    s.start(item(), 3, other, 0.0)
    s.pump(0.0, net.send)
    s.fail_transfers_to(2)  # the transport refused frames for store 2
    assert s.take_outcomes() == [Outcome(9, 2, SnapshotStatus.FAILURE)] and first.closed
    assert not other.closed and len(s) == 1
    s, net = sender(config), Net()
    assert s.start(item(), 2, FakeSource(), 0.0) and s.start(item(), 3, FakeSource(), 0.0)
    third = FakeSource()
    assert not s.start(item(), 4, third, 0.0) and third.closed
    s.pump(0.0, net.send)
    s.on_ack(codec.SnapAck(CLUSTER, 2, 100, 0, False), 0.0)  # refused by store 2
    assert s.take_outcomes() == [Outcome(9, 2, SnapshotStatus.FAILURE)]


def test_stray_acks_are_logged_and_ignored(config: TransferConfig, caplog) -> None:
    """Logged once per kind (what other stores send is throttled)."""
    s, net = sender(config), Net()
    s.start(item(), 2, FakeSource(), 0.0)
    s.pump(0.0, net.send)
    with caplog.at_level(logging.ERROR):
        s.on_ack(codec.SnapAck(CLUSTER, 2, 999, 0, True), 0.0)  # unknown transfer
        s.on_ack(codec.SnapAck(CLUSTER, 3, 100, 0, True), 0.0)  # from the wrong store
        s.on_ack(codec.SnapAck(CLUSTER, 2, 100, 1, True), 0.0)  # out of order
        s.on_ack(codec.SnapAck(CLUSTER, 2, 100, 7, True), 0.0)  # never sent
    assert [r.getMessage().split(" ")[:3] for r in caplog.records] == [
        ["dropped", "a", "snapshot"],
        ["transfer", "64:", "dropped"],
    ]
    assert len(s) == 1 and s.take_outcomes() == []


def chunk(seq: int, pairs: list[bytes], done: bool = False, tid: int = 5) -> codec.SnapChunk:
    it = item() if seq == 0 else None
    return codec.SnapChunk(CLUSTER, 1, 9, tid, seq, pairs, done, it)


def acks(net: Net) -> list[tuple[int, bool]]:
    return [(a.seq, a.ok) for a in net.take()]


@pytest.mark.parametrize(
    "bad",
    [
        chunk(2, [b"k2", b"v"]),  # skips seq 1
        chunk(0, [b"k0", b"v"]),  # a duplicate chunk 0
        chunk(1, [b"k0", b"v"]),  # keys not ascending across chunks
        chunk(1, [b"m", b"v"]),  # outside the region
        chunk(1, [b"k3", b"v", b"k2", b"v"]),  # not ascending within a chunk
    ],
)
def test_receiver_refuses_bad_chunks_and_drops_the_file(tmp_path, config, caplog, bad) -> None:
    r, net = receiver(tmp_path, config), Net()
    assert r.on_chunk(chunk(0, [b"k0", b"v", b"k1", b"v"]), 0.0, net.send) is None
    assert acks(net) == [(0, True)]
    with caplog.at_level(logging.ERROR):
        assert r.on_chunk(bad, 0.0, net.send) is None
    assert caplog.records and acks(net) == [(bad.seq, False)]
    assert len(r) == 0 and os.listdir(tmp_path / "snap") == []


def test_receiver_refuses_unknown_transfers_and_bad_headers(tmp_path, config, caplog) -> None:
    r, net = receiver(tmp_path, config), Net()
    with caplog.at_level(logging.ERROR):
        assert r.on_chunk(chunk(3, [b"k", b"v"]), 0.0, net.send) is None
        bad = chunk(0, [])
        assert bad.item is not None
        bad.item.message.snapshot = Snapshot(b"\x93old", bad.item.message.snapshot.metadata)
        assert r.on_chunk(bad, 0.0, net.send) is None
    assert len(caplog.records) == 2 and acks(net) == [(3, False), (0, False)]


def test_receiver_caps_transfers_and_expires_abandoned_ones(tmp_path, config) -> None:
    r, net = receiver(tmp_path, config), Net()
    r.on_chunk(chunk(0, [b"k0", b"v"], tid=1), 0.0, net.send)
    r.on_chunk(chunk(0, [b"k0", b"v"], tid=2), 5.0, net.send)
    assert len(r) == 1  # same region from the same store: the newer one wins
    other = chunk(0, [], tid=3)
    other.from_store = 3
    r.on_chunk(other, 5.0, net.send)
    refused = chunk(0, [], tid=4)
    refused.from_store = 4
    r.on_chunk(refused, 5.0, net.send)
    assert acks(net) == [(0, True), (0, True), (0, True), (0, False)]
    assert len(r) == 2 and len(os.listdir(tmp_path / "snap")) == 2
    assert r.expire(14.9) == 0
    assert r.expire(15.0) == 2
    assert len(r) == 0 and os.listdir(tmp_path / "snap") == []


def test_codec_round_trips_and_rejects_snapshot_frames() -> None:
    c = chunk(0, [b"k", b"v"], done=True)
    assert codec.decode(codec.encode_snap_chunk(c)) == c
    a = codec.SnapAck(CLUSTER, 2, 5, 3, False)
    assert codec.decode(codec.encode_snap_ack(a)) == a
    good = [CLUSTER, 1, 9, 5, 1, [b"k", b"v"], False, None]
    bad_bodies = [
        good[:7],
        [CLUSTER, 1, 9, 5, 1, [b"k"], False, None],  # odd pairs
        [CLUSTER, 1, 9, 5, 1, ["k", b"v"], False, None],  # str key
        [CLUSTER, 1, 9, 5, 1, [], 1, None],  # done not a bool
        [CLUSTER, 1, 9, 5, 0, [], False, None],  # chunk 0 without MsgSnap
        [CLUSTER, 1, 0, 5, 1, [], False, None],  # region 0
        [CLUSTER, -1, 9, 5, 1, [], False, None],
    ]
    for body in bad_bodies:
        with pytest.raises(wire.CodecError):
            codec.decode(wire.pack_frame(wire.KIND_SNAP_CHUNK, body))
    app = codec.encode_snap_chunk(chunk(0, []))
    decoded = codec.decode(app)
    assert isinstance(decoded, codec.SnapChunk) and decoded.item is not None
    decoded.item.message.type = MessageType.APP
    with pytest.raises(wire.CodecError, match="MsgSnap"):
        codec.decode(codec.encode_snap_chunk(decoded))
    for body in ([CLUSTER, 2, 5, 3], [CLUSTER, 2, 5, 3, 1], [CLUSTER, 2, 5, -3, True]):
        with pytest.raises(wire.CodecError):
            codec.decode(wire.pack_frame(wire.KIND_SNAP_ACK, body))
