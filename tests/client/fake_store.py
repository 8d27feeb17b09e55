"""A scripted stand-in for a store: a ROUTER on a free 127.0.0.1 port, served
by a thread, answering each request from a per-op script or, by default,
from a small in-memory key-value map. It lets client tests force redirects,
lost replies and refusals deterministically."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Self

import zmq

from multiraft.protocol import wire
from multiraft.protocol.region import Epoch, PeerMeta, Region
from multiraft.protocol.wire import Request, RequestBatch
from multiraft.transport import codec

DROP = object()
"""A script action: read the request, never answer it."""

Action = Any
"""DROP, an (ok, result) pair, or a callable Request -> (ok, result) | DROP."""


def error(kind: str, message: str = "", detail: dict[str, Any] | None = None) -> tuple[bool, Any]:
    return False, [kind, message or kind, detail or {}]


def region(rid: int, start: bytes = b"", end: bytes = b"", version: int = 1, stores=(1,)) -> Region:
    peers = tuple(PeerMeta(s, rid * 100 + s) for s in stores)
    return Region(rid, start, end, Epoch(version, 1), peers)


class Cluster:
    """What every fake store of one test agrees on: regions, leaders,
    addresses and the data (so a redirect lands on the same state)."""

    def __init__(self) -> None:
        self.regions: list[tuple[Region, int | None]] = [(region(1), 1)]
        self.stores: dict[int, str] = {}
        self.data: dict[bytes, bytes] = {}
        self.applied: dict[tuple[int, int], Any] = {}

    def directory(self) -> dict[str, Any]:
        return {
            "regions": [[r.to_wire(), leader] for r, leader in self.regions],
            "stores": dict(self.stores),
        }


class FakeStore:
    """One fake store: serves until stopped; records every request."""

    def __init__(self, cluster: Cluster, store_id: int = 1) -> None:
        self.cluster = cluster
        self.store_id = store_id
        self.script: dict[str, list[Action]] = defaultdict(list)
        self.requests: list[Request] = []
        self.frames = 0
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        port = self._sock.bind_to_random_port("tcp://127.0.0.1")
        self.addr = f"127.0.0.1:{port}"
        cluster.stores[store_id] = self.addr
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._sock.close(linger=0)
        self._ctx.term()

    def ops(self, op: str) -> list[Request]:
        return [r for r in self.requests if r.op == op]

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self._sock.poll(20):
                continue
            ident, frame = self._sock.recv_multipart()
            batch = codec.decode(frame)
            assert isinstance(batch, RequestBatch)
            self.frames += 1
            answers = []
            for req in batch.requests:
                self.requests.append(req)
                out = self._answer(req)
                if out is not DROP:
                    answers.append(wire.pack_reply(req.request_id, *out))
            if answers:
                self._sock.send_multipart([ident, wire.encode_batch(wire.KIND_REPLIES, answers)])

    def _answer(self, req: Request) -> Action:
        queue = self.script[req.op]
        if queue:
            action = queue.pop(0)
            return action(req) if callable(action) else action
        handler: Callable[[Request], Action] = getattr(self, f"_op_{req.op}", self._unknown)
        return handler(req)

    def _unknown(self, req: Request) -> Action:
        return error("InvalidRequest", f"unknown op {req.op}")

    def _op_regions(self, _req: Request) -> Action:
        return True, self.cluster.directory()

    def _op_status(self, _req: Request) -> Action:
        stores = [
            {"id": s, "addr": a, "up": True, "regions": 1, "leaders": 1}
            for s, a in self.cluster.stores.items()
        ]
        regions = self.cluster.directory()["regions"]
        return True, {
            "store_id": self.store_id,
            "addr": self.addr,
            "stores": stores,
            "regions": regions,
        }

    def _op_transfer_leader(self, req: Request) -> Action:
        regions = self.cluster.regions
        self.cluster.regions = [
            (r, req.args["store"] if r.id == req.args["region"] else leader)
            for r, leader in regions
        ]
        return True, None

    def _op_get(self, req: Request) -> Action:
        return True, self.cluster.data.get(req.args["key"])

    def _session(self, req: Request, apply: Callable[[], Any]) -> Action:
        """Apply a write once per (client, seq), as the real store must."""
        key = (req.args["client"], req.args["seq"])
        if key not in self.cluster.applied:
            self.cluster.applied[key] = apply()
        return True, self.cluster.applied[key]

    def _op_put(self, req: Request) -> Action:
        a = req.args
        return self._session(req, lambda: self.cluster.data.__setitem__(a["key"], a["value"]))

    def _op_delete(self, req: Request) -> Action:
        return self._session(req, lambda: self.cluster.data.pop(req.args["key"], None) and None)

    def _op_cas(self, req: Request) -> Action:
        a, data = req.args, self.cluster.data

        def apply() -> bool:
            if data.get(a["key"]) != a["expected"]:
                return False
            if a["new"] is None:
                data.pop(a["key"], None)
            else:
                data[a["key"]] = a["new"]
            return True

        return self._session(req, apply)

    def _op_scan(self, req: Request) -> Action:
        a = req.args
        rows = sorted(
            [k, v]
            for k, v in self.cluster.data.items()
            if a["start"] <= k and (not a["end"] or k < a["end"])
        )
        return True, rows[: a["limit"]]


def free_port_addr() -> str:
    """An address where nothing listens (bound, then released)."""
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.ROUTER)
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        sock.close(linger=0)
    finally:
        ctx.term()
    time.sleep(0.01)
    return f"127.0.0.1:{port}"
