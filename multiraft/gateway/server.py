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

import hiredis

from ..protocol.limits import MAX_KEY_SIZE, MAX_VALUE_SIZE
from .commands import Gateway, Session, execute
from .resp import RedisError, encode

log = logging.getLogger(__name__)

QUEUE_DEPTH = 1024
"""Commands a connection may have waiting; past that its socket is not read."""
MAX_REQUEST_BYTES = MAX_VALUE_SIZE + MAX_KEY_SIZE + 64 * 1024
"""The largest command taken: one key and one value of the largest sizes."""
READ_CHUNK = 256 * 1024


class GatewayServer:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._ids = itertools.count(1)
        self.connections = 0

    async def serve(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._connection, host, port, limit=READ_CHUNK)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(next(self._ids))
        queue: asyncio.Queue[list[bytes] | RedisError | None] = asyncio.Queue(QUEUE_DEPTH)
        self.connections += 1
        worker = asyncio.create_task(self._work(session, queue, writer))
        try:
            await self._read(reader, queue, worker)
        finally:
            self.connections -= 1
            if not worker.done():
                await queue.put(None)
                with contextlib.suppress(Exception):
                    await worker
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read(
        self,
        reader: asyncio.StreamReader,
        queue: asyncio.Queue[list[bytes] | RedisError | None],
        worker: asyncio.Task[None],
    ) -> None:
        parser = hiredis.Reader()
        while not worker.done():
            data = await reader.read(READ_CHUNK)
            if not data:
                return
            parser.feed(data)
            try:
                while (argv := parser.gets()) is not False:
                    await queue.put(_command(argv))
            except hiredis.ProtocolError as e:
                await queue.put(RedisError(f"ERR Protocol error: {e}"))
                return
            if parser.len() > MAX_REQUEST_BYTES:
                await queue.put(RedisError("ERR Protocol error: request too large"))
                return

    async def _work(
        self,
        session: Session,
        queue: asyncio.Queue[list[bytes] | RedisError | None],
        writer: asyncio.StreamWriter,
    ) -> None:
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, RedisError) and str(item).startswith("ERR Protocol error"):
                    writer.write(encode(item, session.proto))
                    return  # Redis closes the connection after a protocol error
                reply = item if isinstance(item, RedisError) else await self._run(session, item)
                writer.write(encode(reply, session.proto))
                await writer.drain()
                if session.closing:
                    return
        finally:
            writer.close()  # the reader, waiting for input, sees the end

    async def _run(self, session: Session, argv: list[bytes]) -> object:
        try:
            return await execute(self.gateway, session, argv)
        except Exception as e:  # noqa: BLE001 - a bug in one command must not end the gateway
            log.exception("command %r failed", argv[0][:32])
            return RedisError(f"ERR internal error: {type(e).__name__}")


def _command(argv: object) -> list[bytes] | RedisError:
    """A parsed request: a non-empty array of bulk strings, or an error."""
    if not isinstance(argv, list) or not argv or not all(isinstance(a, bytes) for a in argv):
        return RedisError("ERR Protocol error: expected an array of bulk strings")
    return argv
