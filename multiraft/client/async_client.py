"""AsyncClient: the asyncio client of a multiraft cluster.

It routes each request by key through its route cache to the store it
believes leads the key's region, and retries on its own when that belief
was wrong (NotLeader, EpochNotMatch, ...), when a store is silent, or when
one is busy, all within one overall timeout per operation. Writes carry
(client id, seq) so a store applies a retried write at most once: a retry
always reuses its seq. Many operations may be in flight at once from one
event loop; they share one socket per store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Self

import zmq

from ..errors import (
    AuthenticationFailed,
    EpochNotMatch,
    InvalidRequest,
    KeyNotInRegion,
    MultiraftError,
    NotLeader,
    RegionNotFound,
    ServerBusy,
    StoreError,
    Timeout,
)
from ..protocol.limits import (
    MAX_SCAN_LIMIT,
    MAX_SPLIT_KEYS,
    WRITE_WINDOW,
    InvalidArgumentType,
    check_key,
    check_optional_value,
    check_value,
)
from ..protocol.peer_change import ADD, REMOVE, goal_reached
from ..protocol.region import VOTER, Region
from ..protocol.router import RegionRouter
from ..protocol.wire import Reply, Request, error_from_wire
from ..security.keys import CertificateError
from .connection import Connection, PendingTable, endpoint, parse_cluster
from .keys import ClientKeys, ClusterKeys, KeySource
from .retry import Op, region_or_none

ATTEMPT_TIMEOUT = 1.0
"""How long one attempt waits for its reply before retrying (same seq)."""

SUSPECT_FOR = 2.0
"""How long a silent store is tried last."""

Args = dict[str, Any]


class _AlreadySplit(Exception):
    """The region holding the split key already starts at it."""

    def __init__(self, region: Region) -> None:
        super().__init__(region.id)
        self.region = region


class AsyncClient:
    """Client of a multiraft cluster for asyncio code (see INTERFACE.md)."""

    def __init__(
        self,
        cluster: str | Sequence[str],
        timeout: float = 5.0,
        *,
        attempt_timeout: float = ATTEMPT_TIMEOUT,
        key: KeySource | None = None,
        cluster_keys: ClusterKeys | None = None,
    ) -> None:
        """`key`: this client's key (a `.key_secret` file) for a secure
        cluster; `cluster_keys`: the stores' public keys (see `keys`)."""
        if not timeout > 0 or not attempt_timeout > 0:
            raise ValueError("timeouts must be positive")
        if key is None and cluster_keys is not None:
            raise CertificateError("cluster_keys without a key: give the client's key too")
        self._keys = ClientKeys(key, cluster_keys) if key is not None else None
        self._seeds = parse_cluster(cluster)
        self.timeout = float(timeout)
        self._attempt_timeout = float(attempt_timeout)
        self.client_id = secrets.randbits(63) or 1
        self.routes = RegionRouter()
        self._ctx = zmq.Context()
        self._conns: dict[str, Connection] = {}
        self._pending: PendingTable = {}
        self._suspect: dict[str, float] = {}
        self._refused: dict[str, str] = {}
        """Stores whose secure handshake failed, with why (until one answers)."""
        self._refreshing: asyncio.Task[bool] | None = None
        self._rids = itertools.count(1)
        self._next_seq = 1
        self._inflight: set[int] = set()
        self._issued: deque[int] = deque()
        """Seqs in the order given out; the head is the oldest maybe in flight."""
        self._window_waiters: list[asyncio.Future[None]] = []
        self._rotation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every socket; operations still in flight fail."""
        if self._closed:
            return
        self._closed = True
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError, MultiraftError):
                await self._refreshing
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            await conn.close()
        self._ctx.destroy(linger=0)

    # ---- the key-value API ----------------------------------------------

    async def get(self, key: bytes) -> bytes | None:
        """The value of `key`, or None if absent (a linearizable read)."""
        check_key(key)
        result, _ = await self._run("get", self._by_key(key), lambda _r: {"key": key})
        if result is not None and not isinstance(result, bytes):
            raise StoreError(f"get: unexpected result {result!r:.100}")
        return result

    async def put(self, key: bytes, value: bytes) -> None:
        """Set `key` to `value`."""
        check_key(key)
        check_value(value)
        await self._write("put", key, {"key": key, "value": value})

    async def delete(self, key: bytes) -> None:
        """Remove `key` (no error if it is absent)."""
        check_key(key)
        await self._write("delete", key, {"key": key})

    async def cas(self, key: bytes, expected: bytes | None, new: bytes | None) -> bool:
        """If the value of `key` is `expected` (None: absent), set it to `new`
        (None: delete it); returns whether it swapped."""
        check_key(key)
        check_optional_value(expected, "expected")
        check_optional_value(new, "new")
        result = await self._write("cas", key, {"key": key, "expected": expected, "new": new})
        if not isinstance(result, bool):
            raise StoreError(f"cas: unexpected result {result!r:.100}")
        return result

    async def scan(
        self, start: bytes = b"", end: bytes = b"", limit: int | None = None
    ) -> list[tuple[bytes, bytes]]:
        """Pairs with start <= key < end (end b"": no bound) in key order, at
        most `limit` (None: all). Each region is read linearizably; a scan
        over several regions or pages is not one atomic snapshot."""
        check_key(start, "start")
        check_key(end, "end")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
            raise InvalidArgumentType(f"limit must be an int, not {type(limit).__name__}")
        if limit is not None and limit < 0:
            raise InvalidRequest("limit must not be negative")
        out: list[tuple[bytes, bytes]] = []
        cur: bytes | None = start
        while cur is not None and (limit is None or len(out) < limit):
            if end and cur >= end:
                break
            want = MAX_SCAN_LIMIT if limit is None else min(MAX_SCAN_LIMIT, limit - len(out))
            cur = await self._scan_page(cur, end, want, out)
        return out

    # ---- cluster administration ------------------------------------------

    async def regions(self) -> list[tuple[Region, int | None]]:
        """Every region of the cluster with its leader's store id (if known),
        from any store's directory; also refreshes the route cache."""
        result = await self._call_any("regions")
        if not self._load_directory(result):
            raise StoreError("malformed region directory")
        return _region_entries(result["regions"])

    async def status(self) -> dict[str, Any]:
        """The answering store's view: {"store_id", "addr", "stores": [{"id",
        "addr", "up", "regions", "leaders"}], "regions": [(Region, leader)]}."""
        result = await self._call_any("status")
        try:
            status = dict(result)
            status["regions"] = _region_entries(result["regions"])
            stores = [dict(s) for s in result["stores"]]
        except (KeyError, TypeError, ValueError) as e:
            raise StoreError(f"malformed status reply: {e}") from None
        status["stores"] = stores
        for region, leader in status["regions"]:
            if self.routes.update(region):
                self.routes.set_leader(region.id, leader)
        return status

    # ---- trust (secure clusters, admin keys) -------------------------------

    async def trust_add(self, key: str, role: str, name: str, store_id: int | None = None) -> None:
        """Trust the public `key` (z85) with `role` on every store (the one
        that answers records it; gossip carries it to the others)."""
        args = {"key": key, "role": role, "name": name, "store_id": store_id}
        await self._call_any("trust_add", args)

    async def trust_remove(self, key: str) -> bool:
        """Stop trusting `key` everywhere; False if it was not trusted."""
        return bool(await self._call_any("trust_remove", {"key": key}))

    async def trust_list(self) -> list[dict[str, Any]]:
        """The answering store's trust table: key, role, name, store_id, removed."""
        return list(await self._call_any("trust_list"))

    async def split(self, key: bytes) -> tuple[Region, Region]:
        """Split the region holding `key` at `key`; returns (left, right).
        Splitting at an existing boundary returns the two regions there."""
        check_key(key)
        if not key:
            raise InvalidRequest("cannot split at the start of the key space")

        def build(region: Region) -> Args:
            if region.start == key:
                raise _AlreadySplit(region)
            return {"key": key}

        try:
            result, _ = await self._run("split", self._by_key(key), build, mutating=True)
        except _AlreadySplit as done:
            return await self._existing_split(done.region)
        try:
            left, right = (Region.from_wire(w) for w in result)
        except (TypeError, ValueError) as e:
            raise StoreError(f"split: unexpected result: {e}") from None
        self.routes.update(left)
        self.routes.update(right)
        return left, right

    async def split_many(self, keys: Iterable[bytes]) -> list[Region]:
        """Split at every key of `keys`, in any order (a key that already
        starts a region is fine): the keys are grouped by the region holding
        them, each region is cut at all of its keys at once by its leader,
        and the regions are split in parallel. Returns the regions that
        start at the keys, in key order."""
        wanted = sorted({check_key(k) for k in keys})
        if b"" in wanted:
            raise InvalidRequest("cannot split at the start of the key space")
        deadline = time.monotonic() + self.timeout
        while True:
            groups = self._split_groups(wanted)
            if not groups:
                break
            if time.monotonic() > deadline:
                raise Timeout(f"split_many: {len(groups)} regions still to split")
            await asyncio.gather(*(self._split_group(g, deadline) for g in groups))
        return [r for r in (self.routes.lookup(k) for k in wanted) if r is not None]

    def _split_groups(self, keys: list[bytes]) -> list[list[bytes]]:
        """The keys that do not start a cached region yet, by the cached
        region holding them (an unknown key is a group of its own, so the
        route cache gets refreshed). A region with more keys than one request
        may carry is first cut at every MAX_SPLIT_KEYS-th of them, so that
        the next round splits the pieces in parallel."""
        groups: dict[int | bytes, list[bytes]] = {}
        for k in keys:
            region = self.routes.lookup(k)
            if region is None:
                groups[k] = [k]
            elif region.start != k:
                groups.setdefault(region.id, []).append(k)
        step = MAX_SPLIT_KEYS
        return [g if len(g) <= step else g[step::step][:step] for g in groups.values()]

    async def _split_group(self, keys: list[bytes], deadline: float) -> None:
        """Cut the region holding keys[0] at those of `keys` it still holds."""

        def build(region: Region) -> Args:
            inside = [k for k in keys if region.contains(k) and k != region.start]
            if not inside:
                raise _AlreadySplit(region)
            return {"keys": inside}

        try:
            result, _ = await self._run(
                "split", self._by_key(keys[0]), build, mutating=True, deadline=deadline
            )
        except _AlreadySplit:
            return
        for desc in result if isinstance(result, list) else []:
            self._learn(desc)

    async def transfer_leader(self, region_id: int, store_id: int) -> None:
        """Ask the region's leader to hand leadership to `store_id`."""
        for name, v in (("region_id", region_id), ("store_id", store_id)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise InvalidArgumentType(f"{name} must be an int, not {type(v).__name__}")
        await self._run(
            "transfer_leader",
            lambda: self.routes.get(region_id),
            lambda _r: {"store": store_id},
            mutating=True,
            missing=lambda: RegionNotFound(f"no region {region_id}"),
        )

    async def add_peer(self, region_id: int, store_id: int, timeout: float | None = None) -> Region:
        """Give the region a voter on `store_id`: a learner first, promoted once
        it has caught up. Returns the new descriptor. `timeout` (default: the
        client's) bounds the whole change, snapshot included."""
        return await self._change_peer(region_id, store_id, ADD, self._deadline(timeout))

    async def remove_peer(
        self, region_id: int, store_id: int, timeout: float | None = None
    ) -> Region:
        """Remove the region's replica on `store_id` (its leader hands
        leadership over first if it is the one going)."""
        return await self._change_peer(region_id, store_id, REMOVE, self._deadline(timeout))

    async def move_peer(
        self, region_id: int, from_store: int, to_store: int, timeout: float | None = None
    ) -> Region:
        """Move a replica: add one on `to_store`, then remove the one on
        `from_store`, so the region never has fewer replicas than before."""
        deadline = self._deadline(timeout)
        await self._change_peer(region_id, to_store, ADD, deadline, replaces=from_store)
        return await self._change_peer(region_id, from_store, REMOVE, deadline)

    async def _change_peer(
        self,
        region_id: int,
        store_id: int,
        change: str,
        deadline: float,
        replaces: int | None = None,
    ) -> Region:
        """Ask the leader for the next step until the goal holds (see
        `multiraft.store.membership`)."""
        for name, v in (("region_id", region_id), ("store_id", store_id), ("from", replaces)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise InvalidArgumentType(f"{name} must be an int, not {type(v).__name__}")
        args: Args = {"store": store_id, "change": change}
        if replaces is not None:
            args["replaces"] = replaces
        while True:
            result, _ = await self._run(
                "change_peer",
                lambda: self.routes.get(region_id),
                lambda _r: args,
                mutating=True,
                missing=lambda: RegionNotFound(f"no region {region_id}"),
                deadline=deadline,
            )
            region = region_or_none(result)
            if region is None:
                raise StoreError(f"change_peer: unexpected result {result!r}")
            self.routes.update(region)
            if goal_reached(region, store_id, change):
                return region
            if time.monotonic() >= deadline:
                raise Timeout(f"region {region_id}: the replica change did not finish in time")

    def _deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (timeout or self.timeout)

    # ---- operations: routing and retries ---------------------------------

    def _by_key(self, key: bytes) -> Callable[[], Region | None]:
        return lambda: self.routes.lookup(key)

    async def _write(self, name: str, key: bytes, args: Args) -> Any:
        """A session write: one seq for all its attempts, acked once answered."""
        deadline = time.monotonic() + self.timeout
        await self._window_slot(deadline)
        seq = self._next_seq
        self._next_seq += 1
        self._inflight.add(seq)
        self._issued.append(seq)
        try:

            def build(_region: Region) -> Args:
                acked = self._acked()
                return {**args, "client": self.client_id, "seq": seq, "acked": acked}

            result, _ = await self._run(
                name, self._by_key(key), build, mutating=True, deadline=deadline
            )
            return result
        finally:
            self._inflight.discard(seq)
            self._wake_window_waiters()

    def _acked(self) -> int:
        """Every seq below this one has been answered to its caller."""
        issued = self._issued
        while issued and issued[0] not in self._inflight:
            issued.popleft()
        return issued[0] if issued else self._next_seq

    async def _window_slot(self, deadline: float) -> None:
        """Wait until a new seq is less than WRITE_WINDOW past `acked`: a
        store then never holds more unacknowledged answers of this client
        than it keeps, so no retry can miss its stored answer."""
        while self._next_seq - self._acked() >= WRITE_WINDOW:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._window_waiters.append(fut)
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await fut
            except TimeoutError:
                raise ServerBusy(f"{WRITE_WINDOW} writes of this client in flight") from None

    def _wake_window_waiters(self) -> None:
        waiters, self._window_waiters = self._window_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _scan_page(
        self, cur: bytes, end: bytes, want: int, out: list[tuple[bytes, bytes]]
    ) -> bytes | None:
        """Scan one region from `cur`, append to `out`; returns where the next
        page starts, or None when the range is exhausted."""

        def build(region: Region) -> Args:
            return {"start": cur, "end": _clip_end(end, region.end), "limit": want}

        rows, region = await self._run("scan", self._by_key(cur), build)
        try:
            page = [(k, v) for k, v in rows if isinstance(k, bytes) and isinstance(v, bytes)]
        except (TypeError, ValueError):
            raise StoreError("scan: malformed rows") from None
        out.extend(page[:want])
        if len(page) >= want:
            return page[want - 1][0] + b"\x00"
        if not region.end or (end and region.end >= end):
            return None
        return region.end

    async def _run(
        self,
        name: str,
        locate: Callable[[], Region | None],
        build: Callable[[Region], Args],
        *,
        mutating: bool = False,
        missing: Callable[[], MultiraftError] | None = None,
        deadline: float | None = None,
    ) -> tuple[Any, Region]:
        """Send one operation until it gets a definite answer or the deadline
        (default: timeout from now) passes; returns its result and the
        region that answered it."""
        if self._closed:
            raise InvalidRequest("the client is closed")
        op = Op(name, self.timeout, mutating=mutating)
        if deadline is not None:
            op.deadline = deadline
        try:
            while op.remaining() > 0:
                region = await self._locate(op, locate, missing)
                if region is None:
                    await self._sleep(op, op.backoff())
                    continue
                args = {"region": region.id, "epoch": region.epoch.to_wire(), **build(region)}
                reply = await self._attempt(op, self._target(region, op), args, region)
                if reply is None:
                    await self._sleep(op, op.backoff())
                    continue
                answered, addr = op.attempts[reply.request_id]
                self._suspect.pop(addr, None)
                self._refused.pop(addr, None)
                if reply.ok:
                    return reply.result, answered or region
                await self._sleep(op, self._on_error(op, reply.result, answered or region))
            raise op.failure()
        finally:
            for rid in op.attempts:
                self._pending.pop(rid, None)

    async def _locate(
        self,
        op: Op,
        locate: Callable[[], Region | None],
        missing: Callable[[], MultiraftError] | None,
    ) -> Region | None:
        """The region to send to, refreshing routes when the cache misses."""
        region = None if op.need_refresh else locate()
        if region is None:
            op.need_refresh = False
            refreshed = await self._refresh(op.deadline)
            region = locate()
            if region is None and refreshed and missing is not None:
                raise missing()
        return region

    async def _attempt(self, op: Op, addr: str, args: Args, region: Region) -> Reply | None:
        """Send once and wait for a reply to this or any earlier attempt of
        the same operation (a late answer is as good as a fresh one)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Reply | None] = loop.create_future()
        for old in op.attempts:
            self._pending[old] = fut
        rid = next(self._rids)
        op.attempts[rid] = (region, addr)
        self._pending[rid] = fut
        conn = self._conn(addr)
        conn.submit(Request(rid, op.name, args))
        # A store that was slow once gets longer next time (it may be alive
        # but loaded); a dead one is still noticed after one attempt_timeout.
        wait = self._attempt_timeout * (2 ** min(op.silent, 4))
        # A bare timer resolving the future with None: cheaper per request
        # than asyncio.timeout, which matters at tens of thousands a second.
        timer = loop.call_later(max(0.0, min(wait, op.remaining())), _expire, fut)
        try:
            reply = await fut
        finally:
            # However this attempt ends (answered, maybe by an earlier
            # attempt; timed out; cancelled), a request still in the outbox
            # must never leave later.
            timer.cancel()
            unsent = conn.withdraw(rid)
        if reply is not None:
            return reply
        self._check_handshake(conn, op)
        sent = not unsent
        op.silent += 1
        op.unknown |= sent and op.mutating
        self._suspect[addr] = time.monotonic() + SUSPECT_FOR
        region_leader = self.routes.leader_of(region.id)
        if region_leader is not None and self.routes.stores.get(region_leader) == addr:
            self.routes.set_leader(region.id, None)
        return None

    def _on_error(self, op: Op, result: Any, region: Region) -> float:
        """Learn from a refusal; returns how long to wait before retrying, or
        raises when retrying cannot help."""
        err = error_from_wire(result)
        op.last_error = err
        if isinstance(err, NotLeader):
            return self._on_not_leader(op, err, region)
        if isinstance(err, EpochNotMatch | KeyNotInRegion):
            wires = err.detail.get("regions") or [err.detail.get("region")]
            for wire in wires if isinstance(wires, list) else []:
                self._learn(wire)
            if self.routes.get(region.id) == region:
                self.routes.remove(region.id)
            return op.redirect()
        if isinstance(err, RegionNotFound):
            self.routes.set_leader(region.id, None)
            op.need_refresh = True
            return op.backoff()
        if isinstance(err, ServerBusy):
            return op.backoff()
        if isinstance(err, Timeout):
            op.unknown |= op.mutating
            return op.backoff()
        raise err

    def _on_not_leader(self, op: Op, err: NotLeader, region: Region) -> float:
        self._learn(err.detail.get("region"))
        leader = err.leader_store_id
        if leader is not None and leader in self.routes.stores:
            # A peer heard from this leader lately: trust that over our own
            # earlier silence from it (it may have been merely slow).
            self._suspect.pop(self.routes.stores[leader], None)
            self.routes.set_leader(region.id, leader)
            return op.redirect()
        self.routes.set_leader(region.id, None)
        op.need_refresh = leader is not None
        return op.backoff()

    def _learn(self, wire: Any) -> None:
        region = region_or_none(wire) if wire is not None else None
        if region is not None:
            self.routes.update(region)

    def _target(self, region: Region, op: Op) -> str:
        """The leader's address if known and not silent, else the region's
        voters in turn (silent ones last), else the seed addresses."""
        stores = self.routes.stores
        leader = self.routes.leader_of(region.id)
        addr = stores.get(leader) if leader is not None else None
        if addr is not None and not self._is_suspect(addr):
            return addr
        known = [p for p in region.peers if p.store_id in stores]
        voters = [stores[p.store_id] for p in known if p.role == VOTER]
        candidates = voters or [stores[p.store_id] for p in known] or self._seeds
        healthy = [a for a in candidates if not self._is_suspect(a)] or candidates
        return healthy[len(op.attempts) % len(healthy)]

    def _is_suspect(self, addr: str) -> bool:
        until = self._suspect.get(addr)
        return until is not None and until > time.monotonic()

    async def _sleep(self, op: Op, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(max(0.0, min(delay, op.remaining())))

    # ---- the route directory ---------------------------------------------

    async def _refresh(self, deadline: float) -> bool:
        """Reload the route cache from any store; concurrent callers share
        one request. Returns whether a directory arrived."""
        task = self._refreshing
        if task is None or task.done():
            loop = asyncio.get_running_loop()
            task = self._refreshing = loop.create_task(self._fetch_directory(deadline))
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                return await asyncio.shield(task)
        except TimeoutError:
            return False

    async def _fetch_directory(self, deadline: float) -> bool:
        for addr in self._directory_sources():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            reply = await self._call(addr, "regions", {}, min(self._attempt_timeout, remaining))
            if reply is not None and reply.ok and self._load_directory(reply.result):
                return True
        return False

    def _directory_sources(self) -> list[str]:
        """Known stores and seeds, healthy first, rotating the start so
        clients spread their load."""
        addrs = list(dict.fromkeys([*self.routes.stores.values(), *self._seeds]))
        self._rotation += 1
        k = self._rotation % len(addrs)
        addrs = addrs[k:] + addrs[:k]
        return [a for a in addrs if not self._is_suspect(a)] + [
            a for a in addrs if self._is_suspect(a)
        ]

    def _load_directory(self, result: Any) -> bool:
        """Merge a "regions" reply into the cache; False if malformed."""
        try:
            stores = {int(k): str(v) for k, v in result["stores"].items()}
            entries = _region_entries(result["regions"])
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
        for store_id, addr in stores.items():
            with contextlib.suppress(ValueError):
                endpoint(addr)
                self.routes.stores[store_id] = addr
        if self._keys is not None:
            self._keys.learn(stores, result.get("keys"))
        for region, leader in entries:
            if self.routes.update(region):
                self.routes.set_leader(region.id, leader)
        return True

    async def _call_any(self, name: str, args: Args | None = None) -> Any:
        """A request any store can answer, tried store after store."""
        op = Op(name, self.timeout, mutating=False)
        while op.remaining() > 0:
            for addr in self._directory_sources():
                remaining = op.remaining()
                if remaining <= 0:
                    break
                reply = await self._call(
                    addr, name, args or {}, min(self._attempt_timeout, remaining)
                )
                if reply is None:
                    continue
                if reply.ok:
                    return reply.result
                err = error_from_wire(reply.result)
                if not isinstance(err, ServerBusy | NotLeader | RegionNotFound):
                    raise err
                op.last_error = err
            await self._sleep(op, op.backoff())
        raise op.failure()

    async def _call(self, addr: str, name: str, args: Args, timeout: float) -> Reply | None:
        """One request, one reply (None if none came in `timeout`)."""
        if self._closed:
            raise InvalidRequest("the client is closed")
        rid = next(self._rids)
        fut: asyncio.Future[Reply | None] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        conn = self._conn(addr)
        conn.submit(Request(rid, name, args))
        try:
            async with asyncio.timeout(timeout):
                reply = await fut
            if reply is None:  # ended early: the handshake failed
                self._check_handshake(conn)
                self._suspect[addr] = time.monotonic() + SUSPECT_FOR
                return None
            self._suspect.pop(addr, None)
            self._refused.pop(addr, None)
            return reply
        except TimeoutError:
            self._check_handshake(conn)  # a store that refused us stays refused
            self._suspect[addr] = time.monotonic() + SUSPECT_FOR
            return None
        finally:
            conn.withdraw(rid)
            self._pending.pop(rid, None)

    def _conn(self, addr: str) -> Connection:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise InvalidRequest("an AsyncClient serves only the event loop it was first used in")
        conn = self._conns.get(addr)
        if conn is None:
            curve = self._keys.curve(addr) if self._keys is not None else None
            conn = self._conns[addr] = Connection(self._ctx, addr, self._pending, curve)
        return conn

    def _check_handshake(self, conn: Connection, op: Op | None = None) -> None:
        """An attempt got no reply. A store that never completed a secure
        handshake with us is refused: the operation goes on with the other
        stores, ends with the reason if it cannot finish, and fails at once
        when every store it knows has refused (an untrusted key, a wrong
        cluster key, no key at all)."""
        why = conn.handshake_error
        if why is None:
            return
        err = AuthenticationFailed(why)
        self._refused[conn.addr] = why
        if op is not None and not op.unknown:
            op.last_error = err
        if {*self.routes.stores.values(), *self._seeds} <= self._refused.keys():
            raise err

    async def _existing_split(self, region: Region) -> tuple[Region, Region]:
        """The two regions meeting at `region.start`, refreshing once if the
        left one is not cached."""
        left = self.routes.left_neighbor(region)
        if left is None:
            await self._refresh(time.monotonic() + self.timeout)
            region = self.routes.get(region.id) or region
            left = self.routes.left_neighbor(region)
        if left is None:
            raise RegionNotFound(f"no region ends at {region.start!r}")
        return left, region


def _expire(fut: asyncio.Future[Reply | None]) -> None:
    """An attempt's time is up: wake its waiter with no reply."""
    if not fut.done():
        fut.set_result(None)


def _region_entries(entries: Any) -> list[tuple[Region, int | None]]:
    """[[region_wire, leader], ...] -> [(Region, leader or None), ...]."""
    out = []
    for wire, leader in entries:
        out.append((Region.from_wire(wire), leader if isinstance(leader, int) else None))
    return out


def _clip_end(end: bytes, region_end: bytes) -> bytes:
    """The smaller of two exclusive ends, where b"" means unbounded."""
    if not end or not region_end:
        return end or region_end
    return min(end, region_end)
