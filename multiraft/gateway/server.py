"""The gateway's server: one asyncio task pair per client connection.

A reader task feeds the socket's bytes to hiredis' Reader and queues each
command; a worker task runs them one after another, in arrival order (as
Redis does, so a pipelined GET sees the SET before it), and writes each
reply. Memory stays bounded whatever a client does: the queue holds
`QUEUE_DEPTH` commands and the reader stops reading while it is full; a
request still incomplete past `MAX_REQUEST_BYTES` (a huge bulk length) is
a protocol error; the worker waits for the socket to drain, so a client
that never reads its replies stops being read from, and only it waits.
Malformed RESP gets Redis' "-ERR Protocol error" and the connection is
closed. Many connections are served at once, all through one
`AsyncClient`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import hiredis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..protocol.limits import MAX_KEY_SIZE, MAX_VALUE_SIZE
from .commands import COMMANDS, Gateway, Session, command_keys, execute
from .resp import RedisError, encode

log = logging.getLogger(__name__)

QUEUE_DEPTH = 1024
"""Commands a connection may have waiting; past that its socket is not read."""
MAX_BURST = 64
"""Replies written at once, at most (a pipeline's, as they come); in
Redis' order also at most READ_CHUNK bytes of them held back."""
MAX_REQUEST_BYTES = MAX_VALUE_SIZE + MAX_KEY_SIZE + 64 * 1024
"""The largest command taken: one key and one value of the largest sizes."""
READ_CHUNK = 256 * 1024
LINGER = 2.0
"""Seconds a connection refused for bad input is drained before it closes."""


class GatewayMetrics:
    """The gateway's own Prometheus metrics (prometheus_client's objects:
    a gateway does far less per command than a store's loop)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.commands = Counter(
            "multiraft_gateway_commands",
            "Redis commands answered, by command and result (ok or the error code).",
            ["command", "result"],
            registry=registry,
        )
        self.seconds = Histogram(
            "multiraft_gateway_command_seconds",
            "Time to answer a command, cluster round trips included.",
            ["command"],
            registry=registry,
        )
        self.connections = Gauge(
            "multiraft_gateway_connections",
            "Client connections open.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def observe(self, command: str, result: str, seconds: float) -> None:
        """Count one answered command and its time (the labelled children
        kept: looking them up is most of a metric's cost per command)."""
        children = self._children.get((command, result))
        if children is None:
            children = self.commands.labels(command, result), self.seconds.labels(command)
            self._children[command, result] = children
        children[0].inc()
        children[1].observe(seconds)


class GatewayServer:
    def __init__(
        self,
        gateway: Gateway,
        registry: CollectorRegistry | None = None,
        order: str = "connection",
    ) -> None:
        """`order`: "connection" runs a connection's commands one after
        another (Redis); "key" only keeps the order of commands on the same
        key (Redis Cluster's guarantee across slots), so a pipeline's
        commands on different keys are in the cluster at once."""
        if order not in ("connection", "key"):
            raise ValueError(f"order must be connection or key, not {order!r}")
        self.order = order
        self.gateway = gateway
        self._ids = itertools.count(1)
        self.metrics = GatewayMetrics(registry or CollectorRegistry())

    async def serve(self, host: str, port: int, reuse_port: bool = False) -> asyncio.Server:
        """Listen; with `reuse_port`, next to other processes on the same
        port (the kernel spreads connections over them)."""
        return await asyncio.start_server(
            self._connection, host, port, limit=READ_CHUNK, reuse_port=reuse_port or None
        )

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = self.gateway.session(next(self._ids))
        queue: asyncio.Queue[list[bytes] | RedisError | None] = asyncio.Queue(QUEUE_DEPTH)
        self.metrics.connections.inc()
        work = self._work if self.order == "connection" else self._work_by_key
        worker = asyncio.create_task(work(session, queue, writer))
        refused = False
        try:
            refused = await self._read(reader, queue, worker)
        finally:
            self.metrics.connections.dec()
            if not worker.done():
                await queue.put(None)
                with contextlib.suppress(Exception):
                    await worker
            if refused:
                await _linger(reader)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read(
        self,
        reader: asyncio.StreamReader,
        queue: asyncio.Queue[list[bytes] | RedisError | None],
        worker: asyncio.Task[None],
    ) -> bool:
        """Queue the commands as they come; True if the input was refused
        as a protocol error (the connection then ends)."""
        parser = hiredis.Reader()
        while not worker.done():
            data = await reader.read(READ_CHUNK)
            if not data:
                return False
            parser.feed(data)
            try:
                while (argv := parser.gets()) is not False:
                    command = _command(argv)
                    await queue.put(command)
                    if isinstance(command, RedisError):
                        return True
            except hiredis.ProtocolError as e:
                await queue.put(RedisError(f"ERR Protocol error: {e}"))
                return True
            if parser.len() > MAX_REQUEST_BYTES:
                await queue.put(RedisError("ERR Protocol error: request too large"))
                return True
        return False

    async def _work(
        self,
        session: Session,
        queue: asyncio.Queue[list[bytes] | RedisError | None],
        writer: asyncio.StreamWriter,
    ) -> None:
        """Run the commands one after another; the replies of a burst (the
        commands already waiting when one finishes) leave in one write."""
        out: list[bytes] = []
        held = 0
        while (item := await queue.get()) is not None:
            if isinstance(item, RedisError):
                # A protocol error: Redis says why and closes the
                # connection (`_connection` does, after `_linger`).
                writer.write(b"".join(out) + encode(item, session.proto))
                await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
                return
            out.append(encode(await self._run(session, item), session.proto))
            held += len(out[-1])
            if session.closing or queue.empty() or len(out) >= MAX_BURST or held >= READ_CHUNK:
                writer.write(b"".join(out))
                out.clear()
                held = 0
                await writer.drain()
            if session.closing:  # QUIT: the reader, waiting for input, sees the end
                writer.close()
                return

    async def _work_by_key(
        self,
        session: Session,
        queue: asyncio.Queue[list[bytes] | RedisError | None],
        writer: asyncio.StreamWriter,
    ) -> None:
        """Each command waits only for the earlier ones on its keys (and a
        keyless one for all earlier ones, and all later ones for it);
        replies still leave in arrival order, a burst's in one write."""
        bursts: asyncio.Queue[list[Running] | None] = asyncio.Queue(QUEUE_DEPTH // MAX_BURST)
        sender = asyncio.create_task(_send_in_order(bursts, writer))
        chains = KeyChains()
        ended = False
        while not ended:
            item: list[bytes] | RedisError | None = await queue.get()
            burst: list[Running] = []
            while True:
                if item is None:
                    ended = True
                elif isinstance(item, RedisError):
                    burst.append(asyncio.create_task(_refusal(item, session)))
                    ended = True
                else:
                    burst.append(chains.start(item, partial(self._run_after, session, item)))
                if ended or queue.empty() or len(burst) >= MAX_BURST:
                    break
                item = queue.get_nowait()
            if burst:
                await bursts.put(burst)
        await bursts.put(None)
        await sender

    async def _run_after(
        self, session: Session, argv: list[bytes], deps: list[Running]
    ) -> tuple[bytes, str]:
        if deps:
            await asyncio.wait(deps)
        reply = encode(await self._run(session, argv), session.proto)
        return reply, "close" if session.closing else ""

    async def _run(self, session: Session, argv: list[bytes]) -> object:
        start = time.monotonic()
        try:
            reply: object = await execute(self.gateway, session, argv)
        except Exception as e:  # noqa: BLE001 - a bug in one command must not end the gateway
            log.exception("command %r failed", argv[0][:32])
            reply = RedisError(f"ERR internal error: {type(e).__name__}")
        name = argv[0].lower()
        command = name.decode() if name in COMMANDS else "unknown"
        result = str(reply).split(" ", 1)[0] if isinstance(reply, RedisError) else "ok"
        self.metrics.observe(command, result, time.monotonic() - start)
        return reply


Running = asyncio.Task[tuple[bytes, str]]
"""A command under way: its encoded reply, and what then ("", "close", "eof")."""


class KeyChains:
    """Which command each key waits for: the last one started on it; and
    the last keyless command, which every later command waits for. A key's
    last command has waited for the ones before it, so waiting for every
    key's last command (and the last keyless one) waits for all."""

    def __init__(self) -> None:
        self.last: dict[bytes, Running] = {}
        self.barrier: Running | None = None

    def start(
        self,
        argv: list[bytes],
        run: Callable[[list[Running]], Coroutine[Any, Any, tuple[bytes, str]]],
    ) -> Running:
        """Start `run(deps)` for the command `argv`, after what it must follow."""
        keys = command_keys(argv)
        barrier = self.barrier if self.barrier is not None and not self.barrier.done() else None
        if keys is None:
            deps = list(self.last.values())
        else:
            deps = [self.last[k] for k in keys if k in self.last]
        if barrier is not None:
            deps.append(barrier)
        task = asyncio.create_task(run(deps))
        if keys is None:
            self.barrier = task
        elif keys:
            for k in keys:
                self.last[k] = task
            task.add_done_callback(partial(self._forget, keys))
        return task

    def _forget(self, keys: list[bytes], task: Running) -> None:
        for k in keys:
            if self.last.get(k) is task:
                del self.last[k]


async def _refusal(error: RedisError, session: Session) -> tuple[bytes, str]:
    return encode(error, session.proto), "eof"


async def _send_in_order(
    bursts: asyncio.Queue[list[Running] | None], writer: asyncio.StreamWriter
) -> None:
    """Write each burst's replies, in arrival order, in one write once they
    are all done; after a protocol error half-close (the connection
    lingers, then closes), after QUIT close. It reads the queue to its end
    whatever happens, so the commands' side never waits on it forever."""
    ended = False
    while (burst := await bursts.get()) is not None:
        out: list[bytes] = []
        then = ""
        for task in burst:
            data, after = await task
            if not (ended or then):
                out.append(data)
                then = after
        if ended:
            continue
        try:
            writer.write(b"".join(out))
            await writer.drain()
        except ConnectionError:
            ended = True  # the client went away: its replies go nowhere
            continue
        if then == "eof" and writer.can_write_eof():
            writer.write_eof()
        elif then == "close":
            writer.close()
        ended = bool(then)


async def _linger(reader: asyncio.StreamReader) -> None:
    """Read and drop what a refused client still sends, for a moment:
    closing a socket with unread input resets it, and the client could lose
    the error reply before reading it."""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(LINGER):
            while await reader.read(READ_CHUNK):
                pass


def _command(argv: object) -> list[bytes] | RedisError:
    """A parsed request: a non-empty array of bulk strings, or an error."""
    if not isinstance(argv, list) or not argv or not all(isinstance(a, bytes) for a in argv):
        return RedisError("ERR Protocol error: expected an array of bulk strings")
    return argv
