"""The ZeroMQ shell around a store: a real DEALER talks to a one-replica
store whose loop passes are run by hand."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from multiraft.protocol import wire
from multiraft.protocol.wire import Reply, Request
from multiraft.store import store as store_mod
from multiraft.store.shell import StoreServer
from tests.store.test_service import MAX_TURNS, config, read_args, write_args


def free_addr() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def elect(server: StoreServer) -> None:
    """Run loop passes until the one-replica store leads region 1."""
    deadline = time.monotonic() + 10
    while not server.store.peers[1].is_leader():
        assert time.monotonic() < deadline, "no leader"
        server.run_once(5)


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[StoreServer, zmq.Socket]]:
    """A one-replica store leading its region, and a DEALER connected to it."""
    addr = free_addr()
    server = StoreServer(config(tmp_path, addr))
    client = zmq.Context.instance().socket(zmq.DEALER)
    client.setsockopt(zmq.LINGER, 0)
    try:
        client.connect(f"tcp://{addr}")
        elect(server)
        yield server, client
    finally:
        client.close(0)
        server.close()


def test_a_dealer_client_end_to_end(wired: tuple[StoreServer, zmq.Socket]) -> None:
    server, client = wired

    def roundtrip(req: Request) -> Reply:
        client.send(wire.encode_request(req))
        deadline = time.monotonic() + 5
        while not client.poll(0):
            assert time.monotonic() < deadline, "no reply"
            server.run_once(5)
        rep = wire.decode_client_frame(client.recv())
        assert isinstance(rep, Reply) and rep.request_id == req.request_id
        return rep

    put = write_args(key=b"wire", value=b"value")
    assert roundtrip(Request(11, "put", put)).ok
    rep = roundtrip(Request(12, "get", read_args(key=b"wire")))
    assert rep.ok and rep.result == b"value"
    rep = roundtrip(Request(13, "get", read_args(region=5, key=b"wire")))
    assert not rep.ok and rep.result[0] == "RegionNotFound"


def test_a_requests_frame_is_answered_in_replies_frames(
    wired: tuple[StoreServer, zmq.Socket],
) -> None:
    server, client = wired
    requests = [
        Request(1, "get", read_args(region=5, key=b"a")),
        Request(2, "nope", {}),
        Request(3, "put", write_args(key=b"k", value=b"v")),
    ]
    client.send(wire.encode_batch(wire.KIND_REQUESTS, [wire.pack_request(r) for r in requests]))
    replies: dict[int, Reply] = {}
    frames = []
    for _ in range(MAX_TURNS):
        if len(replies) == 3:
            break
        server.run_once(5)
        while client.poll(0):
            batch = wire.decode_client_frame(client.recv())
            assert isinstance(batch, wire.ReplyBatch)
            frames.append([r.request_id for r in batch.replies])
            replies.update((r.request_id, r) for r in batch.replies)
    assert replies[1].result[0] == "RegionNotFound"
    assert replies[2].result[0] == "InvalidRequest"
    assert replies[3].ok
    assert frames[0][:2] == [1, 2], "the refusals of one turn share a frame"


def test_a_failed_start_closes_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = []
    real = store_mod.open_data_dir

    def spy(*args: Any, **kw: Any) -> Any:
        engine, meta = real(*args, **kw)
        opened.append(engine)
        return engine, meta

    monkeypatch.setattr(store_mod, "open_data_dir", spy)
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        addr = f"127.0.0.1:{busy.getsockname()[1]}"
        with pytest.raises(zmq.ZMQError):
            StoreServer(config(tmp_path, addr))
    finally:
        busy.close()
    [engine] = opened
    try:
        with pytest.raises(Exception, match="closed|deleted"):
            engine.map_size()
    finally:
        engine.close()
