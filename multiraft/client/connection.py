"""One ZeroMQ DEALER per store, shared by every request in flight to it.

Requests carry a client-unique id; a receive task per socket hands each reply
to the future registered under its id in a table shared by all connections,
so any number of coroutines can wait on one socket at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import zmq
import zmq.asyncio

from ..transport import codec
from ..transport.codec import Reply

log = logging.getLogger(__name__)

SEND_HWM = 10_000
"""Frames queued per store before a send waits (the caller's timeout bounds it)."""

PendingTable = dict[int, asyncio.Future[Reply]]


def endpoint(addr: str) -> str:
    """ZeroMQ endpoint of a "host:port" store address."""
    if "://" in addr:
        return addr
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"store address must be HOST:PORT, not {addr!r}")
    return f"tcp://{addr}"


class Connection:
    """A DEALER connected to one store plus the task reading its replies."""

    def __init__(self, ctx: zmq.asyncio.Context, addr: str, pending: PendingTable) -> None:
        self.addr = addr
        self._pending = pending
        self._sock = ctx.socket(zmq.DEALER)
        self._configure(self._sock)
        self._sock.connect(endpoint(addr))
        self._task = asyncio.get_running_loop().create_task(self._receive())

    @staticmethod
    def _configure(sock: zmq.asyncio.Socket) -> None:
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, SEND_HWM)
        sock.setsockopt(zmq.RCVHWM, SEND_HWM)
        # Queue only to a live connection: a frame for a down store then
        # waits in send (bounded by the attempt timeout, and known unsent)
        # instead of being delivered minutes later.
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        sock.setsockopt(zmq.MAXMSGSIZE, codec.MAX_FRAME_SIZE)

    async def send(self, frame: bytes) -> None:
        await self._sock.send(frame, copy=len(frame) < 64 * 1024)

    async def _receive(self) -> None:
        while True:
            try:
                frame = await self._sock.recv()
            except zmq.ZMQError as e:
                log.debug("receive from %s stopped: %s", self.addr, e)
                return
            self._dispatch(frame)

    def _dispatch(self, frame: bytes) -> None:
        try:
            msg = codec.decode(frame)
        except codec.CodecError as e:
            log.warning("dropping a malformed frame from %s: %s", self.addr, e)
            return
        if not isinstance(msg, Reply):
            log.warning("dropping a non-reply frame from %s", self.addr)
            return
        fut = self._pending.get(msg.request_id)
        if fut is not None and not fut.done():
            fut.set_result(msg)

    async def close(self) -> None:
        """Stop the receive task and close the socket without lingering."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
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
