"""ZeroMQ sockets of one store: a ROUTER that serves peers and clients on the
store's one address, and a DEALER per peer store for outgoing Raft traffic.

Sends never block the store loop: DEALERs are `IMMEDIATE` (nothing is queued
for a peer that is not connected) and sent with NOBLOCK, so a dead peer
shows up as a failed send, which the store reports to Raft as unreachable.
ZeroMQ reconnects by itself once the peer is back.
"""

from __future__ import annotations

import logging

import zmq

from ..protocol.limits import check_store_addr
from ..protocol.wire import MAX_FRAME_SIZE

log = logging.getLogger(__name__)

SEND_HWM = 10_000
ZERO_COPY_MIN = 1024 * 1024
"""Below this size copying a frame is cheaper than ZeroMQ's zero-copy
bookkeeping (a Python thread that takes the GIL for every frame released)."""


class Transport:
    def __init__(self, addr: str, store_id: int, context: zmq.Context | None = None) -> None:
        self.ctx = context or zmq.Context.instance()
        self.store_id = store_id
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_SIZE)
        self.router.setsockopt(zmq.SNDHWM, SEND_HWM)
        self.router.setsockopt(zmq.RCVHWM, SEND_HWM)
        try:
            self.router.bind(f"tcp://{addr}")
        except zmq.ZMQError:
            self.router.close(0)
            raise
        self._peers: dict[int, tuple[str, zmq.Socket]] = {}
        self._poller = zmq.Poller()
        self._poller.register(self.router, zmq.POLLIN)

    def set_store_addr(self, store_id: int, addr: str) -> None:
        """Know (or move) a peer store; connects lazily and reconnects by itself."""
        if store_id == self.store_id:
            return
        check_store_addr(addr)
        known = self._peers.get(store_id)
        if known is not None and known[0] == addr:
            return
        if known is not None:
            known[1].close(0)
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.SNDHWM, SEND_HWM)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        sock.connect(f"tcp://{addr}")
        self._peers[store_id] = (addr, sock)

    def recv_all(self, timeout_ms: int, max_frames: int = 4096) -> list[tuple[bytes, bytes]]:
        """Wait up to `timeout_ms` for input, then take all that is waiting.

        Returns (sender identity, frame) pairs; multi-part garbage is kept as
        its last part, so a bad sender cannot desynchronize the socket.
        """
        out: list[tuple[bytes, bytes]] = []
        if not self._poller.poll(timeout_ms):
            return out
        router = self.router
        # Ask whether more is waiting instead of reading until zmq.Again:
        # building that exception costs more than a small frame.
        while len(out) < max_frames and router.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            parts = router.recv_multipart(zmq.NOBLOCK, copy=True)
            if len(parts) >= 2:
                out.append((parts[0], parts[-1]))
        return out

    def send_to_store(self, store_id: int, frame: bytes) -> bool:
        """Queue `frame` for a peer store; False if it cannot be reached now."""
        peer = self._peers.get(store_id)
        if peer is None:
            return False
        try:
            peer[1].send(frame, zmq.NOBLOCK, copy=len(frame) < ZERO_COPY_MIN)
        except zmq.Again:
            return False
        return True

    def reply(self, identity: bytes, frame: bytes) -> None:
        """Answer a client; a client that went away is silently skipped."""
        try:
            self.router.send_multipart(
                [identity, frame], zmq.NOBLOCK, copy=len(frame) < ZERO_COPY_MIN
            )
        except (zmq.Again, zmq.ZMQError) as e:
            log.debug("reply to %r dropped: %s", identity, e)

    def close(self) -> None:
        for _, sock in self._peers.values():
            sock.close(0)
        self._peers.clear()
        self.router.close(0)
