"""One ZeroMQ DEALER per store, shared by every request in flight to it.

Requests carry a client-unique id; a receive task per socket hands each reply
to the future registered under its id in a table shared by all connections,
so any number of coroutines can wait on one socket at once. Requests made in
one pass of the event loop leave together in one REQUESTS frame (as TiKV's
client batches its commands), and the store answers them together.

With a key the socket is a CurveZMQ client that expects the store's public
key. A monitor socket reports how each handshake ends: a failed one (key
not trusted, wrong store key, plain on one side only) is kept as
`handshake_error` and ends the attempts waiting in the outbox at once, so
the caller can say what is wrong instead of timing out. It also reports a
connection that closes (a store killed, or stopped): the attempts sent on
it, and those made while it stays down, end at once instead of waiting out
their timeout, and the caller tries another store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import zmq

from ..protocol import handshake, wire
from ..protocol.wire import Reply, ReplyBatch, Request
from ..security.keys import KeyPair

log = logging.getLogger(__name__)

SEND_HWM = 10_000
"""Frames ZeroMQ queues per store; past that, requests wait in the outbox."""
BATCH_BYTES = 256 * 1024
BATCH_REQUESTS = 1024
"""A REQUESTS frame leaves at once when it holds this many bytes or requests."""

PendingTable = dict[int, asyncio.Future[Reply | None]]
"""Waiters by request id; a waiter resolved with None timed out."""


@dataclass(frozen=True, slots=True)
class Curve:
    """A secure connection's keys: ours, and the one the store must prove."""

    key: KeyPair
    server_key: str


def endpoint(addr: str) -> str:
    """ZeroMQ endpoint of a "host:port" store address."""
    if "://" in addr:
        return addr
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"store address must be HOST:PORT, not {addr!r}")
    return f"tcp://{addr}"


class Connection:
    """A DEALER connected to one store, read straight from its file descriptor.

    The event loop watches the socket's FD; on each wake-up every waiting
    reply is drained in one go (ZeroMQ signals edges, so it must be drained,
    and after sends too). This costs far less per request than pyzmq's
    asyncio sockets, which schedule several callbacks per message.
    """

    def __init__(
        self, ctx: zmq.Context, addr: str, pending: PendingTable, curve: Curve | None = None
    ) -> None:
        self.addr = addr
        self._pending = pending
        self._loop = asyncio.get_running_loop()
        self._sock = ctx.socket(zmq.DEALER)
        self._configure(self._sock)
        if curve is not None:
            self._sock.curve_serverkey = curve.server_key.encode()
            self._sock.curve_publickey = curve.key.public.encode()
            self._sock.curve_secretkey = curve.key.secret.encode()
        self._secure = curve is not None
        self.handshake_error: str | None = None
        """Why the last handshake with the store failed; None once one works."""
        self.down = False
        """The connection closed and no handshake has worked since."""
        self._sent: set[int] = set()
        """Requests handed to ZeroMQ and neither answered nor withdrawn."""
        self._writable = asyncio.Event()
        self._outbox: dict[int, bytes] = {}
        """Packed requests not yet handed to ZeroMQ, by request id."""
        self._outbox_bytes = 0
        self._flush_task: asyncio.Task[None] | None = None
        self._monitor = handshake.watch(self._sock, zmq.EVENT_DISCONNECTED)
        self._loop.add_reader(self._monitor.fileno(), self._on_handshakes)
        self._sock.connect(endpoint(addr))
        # ZeroMQ's FD signals only changes after the socket was first
        # asked for its events: ask once now (a refusal may be in already).
        self._on_handshakes()
        self._loop.add_reader(self._sock.getsockopt(zmq.FD), self._on_events)

    @staticmethod
    def _configure(sock: zmq.Socket) -> None:
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, SEND_HWM)
        sock.setsockopt(zmq.RCVHWM, SEND_HWM)
        # Queue only to a live connection: requests for a down store then
        # wait in the outbox until their attempt ends and withdraws them
        # (known unsent) instead of being delivered minutes later.
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_FRAME_SIZE)

    def submit(self, request: Request) -> None:
        """Send `request` with the others of this event-loop pass. While the
        store is unreachable or its queue full, it waits in the outbox until
        sent or `withdraw`n."""
        if self.down:
            self._expire([request.request_id])  # nobody there: let the caller go on
        packed = wire.pack_request(request)
        if not self._outbox:
            self._loop.call_soon(self._flush)
        self._outbox[request.request_id] = packed
        self._outbox_bytes += len(packed)
        full = self._outbox_bytes >= BATCH_BYTES or len(self._outbox) >= BATCH_REQUESTS
        if full and not self._waiting_to_send():
            self._flush()

    def withdraw(self, request_id: int) -> bool:
        """Take a request back if it has not been sent; returns whether it
        was still waiting (then the store never sees it)."""
        self._sent.discard(request_id)
        packed = self._outbox.pop(request_id, None)
        if packed is None:
            return False
        self._outbox_bytes -= len(packed)
        return True

    def _flush(self) -> None:
        """Send the outbox in frames of at most BATCH_REQUESTS requests (or
        about BATCH_BYTES); what ZeroMQ will not take now waits for the
        socket to become writable."""
        while self._outbox and not self._sock.closed:
            taken, size = [], 0
            for rid, packed in self._outbox.items():
                taken.append(rid)
                size += len(packed)
                if size >= BATCH_BYTES or len(taken) >= BATCH_REQUESTS:
                    break
            frame = wire.encode_batch(wire.KIND_REQUESTS, [self._outbox[r] for r in taken])
            try:
                self._sock.send(frame, zmq.NOBLOCK, copy=len(frame) < 64 * 1024)
            except zmq.Again:
                if not self._waiting_to_send():
                    self._flush_task = self._loop.create_task(self._flush_when_writable())
                break
            for rid in taken:
                del self._outbox[rid]
            self._sent.update(taken)
            self._outbox_bytes -= size
        self._on_events()  # a send may have consumed the FD's readable edge

    def _waiting_to_send(self) -> bool:
        return self._flush_task is not None and not self._flush_task.done()

    async def _flush_when_writable(self) -> None:
        while self._outbox and not self._sock.closed:
            self._writable.clear()
            self._on_events()
            await self._writable.wait()
            self._flush()

    def _on_events(self) -> None:
        sock = self._sock
        if sock.closed:
            return
        while True:
            events = sock.getsockopt(zmq.EVENTS)
            if events & zmq.POLLOUT:
                self._writable.set()
            if not events & zmq.POLLIN:
                return
            try:
                frame = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._dispatch(frame)

    def _on_handshakes(self) -> None:
        if self._monitor.closed:
            return
        for event, value in handshake.read_events(self._monitor):
            if event == zmq.EVENT_DISCONNECTED:
                # Nothing sent on it will be answered: end those attempts.
                self.down = True
                self._expire(list(self._sent))
            else:
                self.handshake_error = handshake.failure(event, value, self.addr, self._secure)
                self.down = False
        if self.handshake_error is not None:
            # Nothing reaches the store: end the attempts waiting to be sent.
            self._expire(list(self._outbox))

    def _expire(self, request_ids: list[int]) -> None:
        """End the attempts waiting on these requests (no reply: the caller
        retries, elsewhere if it can)."""
        for rid in request_ids:
            fut = self._pending.get(rid)
            if fut is not None and not fut.done():
                fut.set_result(None)

    def _dispatch(self, frame: bytes) -> None:
        try:
            msg = wire.decode_client_frame(frame)
        except wire.CodecError as e:
            log.warning("dropping a malformed frame from %s: %s", self.addr, e)
            return
        if isinstance(msg, ReplyBatch):
            for reply in msg.replies:
                self._resolve(reply)
        elif isinstance(msg, Reply):
            self._resolve(msg)
        else:
            log.warning("dropping a non-reply frame from %s", self.addr)

    def _resolve(self, reply: Reply) -> None:
        self._sent.discard(reply.request_id)
        fut = self._pending.get(reply.request_id)
        if fut is not None and not fut.done():
            fut.set_result(reply)

    async def close(self) -> None:
        """Stop watching the socket and close it without lingering."""
        if self._flush_task is not None:
            self._flush_task.cancel()
        self._loop.remove_reader(self._sock.getsockopt(zmq.FD))
        self._loop.remove_reader(self._monitor.fileno())
        self._sock.disable_monitor()
        self._monitor.close(linger=0)
        self._sock.close(linger=0)


def parse_cluster(cluster: str | Sequence[str]) -> list[str]:
    """Store addresses from "h:p,h:p" or a list of "h:p"; at least one."""
    items = cluster.split(",") if isinstance(cluster, str) else list(cluster)
    addrs = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"store address must be a str, not {type(item).__name__}")
        addr = item.strip()
        if addr:
            endpoint(addr)
            addrs.append(addr)
    if not addrs:
        raise ValueError("no store address given (HOST:PORT[,HOST:PORT...])")
    return list(dict.fromkeys(addrs))
