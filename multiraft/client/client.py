"""Client: the blocking API, an AsyncClient driven on a private event loop.

The loop runs in a daemon thread owned by the Client, so a Client works from
any thread (several threads may share one) and from code that already runs
an event loop of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Iterable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from ..errors import InvalidRequest, Timeout
from ..protocol.region import Region
from .async_client import ATTEMPT_TIMEOUT, AsyncClient
from .keys import ClusterKeys, KeySource

T = TypeVar("T")

GRACE = 5.0
"""Slack past the operation timeout before a caller stops waiting on the
loop thread (the AsyncClient enforces the real deadline)."""


class Client:
    """Blocking client of a multiraft cluster (see INTERFACE.md)."""

    def __init__(
        self,
        cluster: str | Sequence[str],
        timeout: float = 5.0,
        *,
        attempt_timeout: float = ATTEMPT_TIMEOUT,
        key: KeySource | None = None,
        cluster_keys: ClusterKeys | None = None,
    ) -> None:
        """`key`, `cluster_keys`: for a secure cluster (see AsyncClient)."""
        self._async = AsyncClient(
            cluster,
            timeout,
            attempt_timeout=attempt_timeout,
            key=key,
            cluster_keys=cluster_keys,
        )
        self.timeout = self._async.timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="multiraft-client", daemon=True
        )
        self._thread.start()
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def client_id(self) -> int:
        return self._async.client_id

    def close(self) -> None:
        """Close the sockets and stop the loop thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            fut = asyncio.run_coroutine_threadsafe(self._async.close(), self._loop)
            fut.result(timeout=GRACE)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=GRACE)
            if not self._thread.is_alive():
                self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._closed:
            coro.close()
            raise InvalidRequest("the client is closed")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout=(timeout or self.timeout) + GRACE)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise Timeout("no answer in time; it may or may not have applied") from None

    def get(self, key: bytes) -> bytes | None:
        """The value of `key`, or None if absent."""
        return self._call(self._async.get(key))

    def put(self, key: bytes, value: bytes) -> None:
        """Set `key` to `value`."""
        self._call(self._async.put(key, value))

    def delete(self, key: bytes) -> None:
        """Remove `key` (no error if absent)."""
        self._call(self._async.delete(key))

    def cas(self, key: bytes, expected: bytes | None, new: bytes | None) -> bool:
        """Atomically set `key` to `new` if its value is `expected` (None:
        absent / delete); returns whether it swapped."""
        return self._call(self._async.cas(key, expected, new))

    def scan(
        self, start: bytes = b"", end: bytes = b"", limit: int | None = None
    ) -> list[tuple[bytes, bytes]]:
        """Pairs with start <= key < end (b"": unbounded), sorted, at most `limit`."""
        return self._call(self._async.scan(start, end, limit))

    def regions(self) -> list[tuple[Region, int | None]]:
        """Every region with its leader's store id (None if unknown)."""
        return self._call(self._async.regions())

    def status(self) -> dict[str, Any]:
        """One store's view of the cluster (see AsyncClient.status)."""
        return self._call(self._async.status())

    def trust_add(self, key: str, role: str, name: str, store_id: int | None = None) -> None:
        self._call(self._async.trust_add(key, role, name, store_id))

    def trust_remove(self, key: str) -> bool:
        return self._call(self._async.trust_remove(key))

    def trust_list(self) -> list[dict[str, Any]]:
        return self._call(self._async.trust_list())

    def split(self, key: bytes) -> tuple[Region, Region]:
        """Split the region holding `key` at `key`; returns (left, right)."""
        return self._call(self._async.split(key))

    def split_many(self, keys: Iterable[bytes]) -> list[Region]:
        """Split at every key (any order), each region once, many at once;
        returns the regions starting at the keys, in key order."""
        return self._call(self._async.split_many(keys))

    def transfer_leader(self, region_id: int, store_id: int) -> None:
        """Ask the region's leader to hand leadership to `store_id`."""
        self._call(self._async.transfer_leader(region_id, store_id))

    def add_peer(self, region_id: int, store_id: int, timeout: float | None = None) -> Region:
        """Give the region a voter on `store_id` (learner, catch-up, promotion)."""
        return self._call(self._async.add_peer(region_id, store_id, timeout), timeout)

    def remove_peer(self, region_id: int, store_id: int, timeout: float | None = None) -> Region:
        """Remove the region's replica on `store_id`."""
        return self._call(self._async.remove_peer(region_id, store_id, timeout), timeout)

    def move_peer(
        self, region_id: int, from_store: int, to_store: int, timeout: float | None = None
    ) -> Region:
        """Move the region's replica from one store to another."""
        return self._call(self._async.move_peer(region_id, from_store, to_store, timeout), timeout)
