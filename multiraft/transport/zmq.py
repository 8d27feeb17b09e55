"""ZeroMQ sockets of one store: a ROUTER that serves peers and clients on the
store's one address, and a DEALER per peer store for outgoing Raft traffic.

Sends never block the store loop: DEALERs are `IMMEDIATE` (nothing is queued
for a peer that is not connected) and sent with NOBLOCK, so a dead peer
shows up as a failed send, which the store reports to Raft as unreachable.
ZeroMQ reconnects by itself once the peer is back.

With `Security`, every connection is CurveZMQ: the ROUTER proves the store's
key to whoever connects and admits only keys the trust table holds (pyzmq's
ZAP authenticator, asked once per connection); each frame then comes with
its sender's `Principal`, looked up again per frame so that a key removed
from the table loses its rights on connections made before. A DEALER to a
peer store expects the key the trust table holds for that store id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import zmq
from zmq.auth.thread import ThreadAuthenticator

from ..logs import Throttled
from ..protocol import handshake
from ..protocol.limits import check_store_addr
from ..protocol.wire import MAX_FRAME_SIZE
from ..security.keys import KeyPair
from ..security.trust import PLAIN, UNTRUSTED, Principal, TrustTable

log = logging.getLogger(__name__)

SEND_HWM = 10_000
ZERO_COPY_MIN = 1024 * 1024
"""Below this size copying a frame is cheaper than ZeroMQ's zero-copy
bookkeeping (a Python thread that takes the GIL for every frame released)."""
MAX_TURN_BYTES = 1024 * 1024
"""About how many bytes of frames one turn takes in (at least one frame):
a flood waits in ZeroMQ's queues (fair-queued between connections) instead
of making one turn so long that the store's leaders miss their heartbeats.
A loaded turn takes about 150 KiB (1,024 puts in flight)."""
ZAP_DOMAIN = "multiraft"
LOG_EVERY = 30.0
"""Seconds between two log lines about the same failing connection (it
retries every second)."""

Received = tuple[bytes, bytes, Principal]
"""(sender's ZeroMQ identity, frame, who sent it)."""


@dataclass
class Security:
    key: KeyPair
    """This store's own key."""
    trust: TrustTable


@dataclass
class _PeerSocket:
    addr: str
    server_key: str | None
    sock: zmq.Socket
    monitor: zmq.Socket
    """Reports how the DEALER's handshakes end (`handshake`)."""


class _TrustedKeys:
    """The ZAP credentials provider: a key may connect while it is trusted."""

    def __init__(self, trust: TrustTable) -> None:
        self._trust = trust
        self._log = Throttled(log, LOG_EVERY)

    def callback(self, domain: str, key: bytes) -> bool:
        ok = self._trust.principal(key.decode()) is not None
        if not ok:
            who = key.decode()
            self._log(logging.WARNING, who, "refused a connection with the untrusted key %s", who)
        return ok


class Transport:
    def __init__(
        self,
        addr: str,
        store_id: int,
        context: zmq.Context | None = None,
        security: Security | None = None,
    ) -> None:
        self.ctx = context or zmq.Context.instance()
        self.store_id = store_id
        self.security = security
        self._auth: ThreadAuthenticator | None = None
        self._log = Throttled(log, LOG_EVERY)
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_SIZE)
        self.router.setsockopt(zmq.SNDHWM, SEND_HWM)
        self.router.setsockopt(zmq.RCVHWM, SEND_HWM)
        if security is not None:
            self._serve_securely(security)
        self._monitors: dict[zmq.Socket, str] = {handshake.watch(self.router): ""}
        self._peers: dict[int, _PeerSocket] = {}
        self._poller = zmq.Poller()
        try:
            self.router.bind(f"tcp://{addr}")
        except zmq.ZMQError:
            self.close()
            raise
        self._poller.register(self.router, zmq.POLLIN)
        for monitor in self._monitors:
            self._poller.register(monitor, zmq.POLLIN)

    def _serve_securely(self, security: Security) -> None:
        self._auth = ThreadAuthenticator(self.ctx)
        self._auth.start()
        self._auth.configure_curve_callback(ZAP_DOMAIN, _TrustedKeys(security.trust))
        r = self.router
        r.curve_server = True
        r.curve_publickey = security.key.public.encode()
        r.curve_secretkey = security.key.secret.encode()
        r.zap_domain = ZAP_DOMAIN.encode()

    def set_store_addr(self, store_id: int, addr: str) -> None:
        """Know (or move) a peer store; connects lazily and reconnects by
        itself. In secure mode the peer must prove the key the trust table
        holds for it; without one there is no connection (and an error)."""
        if store_id == self.store_id:
            return
        check_store_addr(addr)
        server_key = None
        if self.security is not None:
            server_key = self.security.trust.store_key(store_id)
            if server_key is None:
                self._log(logging.ERROR, f"key{store_id}", "store %d has no trusted key", store_id)
        known = self._peers.get(store_id)
        if known is not None and (known.addr, known.server_key) == (addr, server_key):
            return
        if known is not None:
            self._close_peer(known)
            del self._peers[store_id]
        if self.security is not None and server_key is None:
            return
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.SNDHWM, SEND_HWM)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        if self.security is not None and server_key is not None:
            sock.curve_serverkey = server_key.encode()
            sock.curve_publickey = self.security.key.public.encode()
            sock.curve_secretkey = self.security.key.secret.encode()
        monitor = handshake.watch(sock)
        self._monitors[monitor] = f"store {store_id} at {addr}"
        self._poller.register(monitor, zmq.POLLIN)
        sock.connect(f"tcp://{addr}")
        self._peers[store_id] = _PeerSocket(addr, server_key, sock, monitor)

    def recv_all(
        self, timeout_ms: int, max_frames: int = 4096, max_bytes: int = MAX_TURN_BYTES
    ) -> list[Received]:
        """Wait up to `timeout_ms` for input, then take what is waiting, up
        to `max_frames` frames or about `max_bytes` (the rest waits in
        ZeroMQ's queues for the next turn).

        Returns (sender identity, frame, sender) triples; multi-part garbage
        is kept as its last part, so a bad sender cannot desynchronize the
        socket.
        """
        out: list[Received] = []
        size = 0
        ready = dict(self._poller.poll(timeout_ms))
        if not ready:
            return out
        for monitor in self._monitors.keys() & ready.keys():
            self._on_handshakes(monitor)
        router = self.router
        secure = self.security is not None
        # Ask whether more is waiting instead of reading until zmq.Again:
        # building that exception costs more than a small frame.
        while (
            len(out) < max_frames
            and size < max_bytes
            and router.getsockopt(zmq.EVENTS) & zmq.POLLIN
        ):
            if not secure:
                parts = router.recv_multipart(zmq.NOBLOCK, copy=True)
                if len(parts) >= 2:
                    out.append((parts[0], parts[-1], PLAIN))
                    size += len(parts[-1])
                continue
            frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
            if len(frames) >= 2:
                sender = self._principal(frames[-1])
                out.append((frames[0].bytes, frames[-1].bytes, sender))
                size += len(out[-1][1])
        return out

    def _principal(self, frame: zmq.Frame) -> Principal:
        assert self.security is not None
        return self.security.trust.principal(str(frame.get("User-Id"))) or UNTRUSTED

    def _on_handshakes(self, monitor: zmq.Socket) -> None:
        peer = self._monitors[monitor]
        for event, value in handshake.read_events(monitor):
            if not peer:
                why = handshake.refusal(event, value, self.security is not None)
            else:
                why = handshake.failure(event, value, peer, self.security is not None)
            if why is not None:
                self._log(logging.ERROR, f"{peer}:{event}", "%s", why)

    def send_to_store(self, store_id: int, frame: bytes) -> bool:
        """Queue `frame` for a peer store; False if it cannot be reached now."""
        peer = self._peers.get(store_id)
        if peer is None:
            return False
        try:
            peer.sock.send(frame, zmq.NOBLOCK, copy=len(frame) < ZERO_COPY_MIN)
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

    def _close_peer(self, peer: _PeerSocket) -> None:
        self._poller.unregister(peer.monitor)
        del self._monitors[peer.monitor]
        peer.sock.disable_monitor()
        peer.monitor.close(0)
        peer.sock.close(0)

    def close(self) -> None:
        for peer in list(self._peers.values()):
            self._close_peer(peer)
        self._peers.clear()
        for monitor in self._monitors:
            monitor.close(0)
        self._monitors.clear()
        self.router.close(0)
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
