"""One LMDB environment per store, and `WriteBatch`: the writes of many
regions committed in exactly one write transaction (one fsync).

Environment flags, and why:

- ``sync=True`` (default): every commit is fdatasync'd, so a batch whose
  commit returned survives power loss, not just a process crash.
- ``metasync=True``: the meta page is flushed with the commit; without it
  the last commit may roll back after an OS crash, breaking the guarantee
  above.
- ``writemap=False``: with a writable map, a full disk surfaces as SIGBUS
  in the middle of a write instead of an error we can report; LMDB's
  malloc'd dirty pages cost little next to the fsync.
- ``subdir=True``: the data dir holds ``data.mdb`` and ``lock.mdb``.
- One unnamed database (no ``max_dbs``): see `keys` for why one key space.

The map grows on demand: a batch that hits `lmdb.MapFullError` is aborted,
the map doubled and the whole batch retried, so callers never see it.
"""

from __future__ import annotations

import errno
import os
import resource
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Protocol, Self, cast

import lmdb

from . import keys
from .errors import IdentMismatch, StorageError, StorageFull
from .snapshot import SnapshotSources
from .states import pack, unpack

DEFAULT_MAP_SIZE = 64 << 20
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

_LOW_ROOM = 64 << 20

_PUTS, _DELETE, _DELETE_RANGE = 0, 1, 2


class Cursor(Protocol):
    """An LMDB cursor as this package opens them (buffers off: keys and
    values are bytes, whatever py-lmdb's annotations allow)."""

    def set_range(self, key: bytes) -> bool: ...
    def set_key(self, key: bytes) -> bool: ...
    def next(self) -> bool: ...
    def prev(self) -> bool: ...
    def last(self) -> bool: ...
    def key(self) -> bytes: ...
    def value(self) -> bytes: ...
    def delete(self) -> bool: ...
    def putmulti(self, items: Iterable[tuple[bytes, bytes]]) -> tuple[int, int]: ...
    def close(self) -> None: ...
    def __iter__(self) -> Iterator[tuple[bytes, bytes]]: ...


class Txn(Protocol):
    """An LMDB transaction as this package opens them (see `Cursor`)."""

    def cursor(self) -> Cursor: ...
    def get(self, key: bytes) -> bytes | None: ...
    def delete(self, key: bytes) -> bool: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...
    def __enter__(self) -> Txn: ...
    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class BatchOwner(Protocol):
    """Keeps in-memory state that must follow a batch only once it commits."""

    def on_committed(self, pending: Any) -> None:
        """The batch holding `pending` is durable: adopt it."""
        ...


class WriteBatch:
    """Writes for any number of regions, applied in order by one commit.

    Puts are collected as (key, value) runs handed to LMDB in one call;
    deletes split the runs so the order of operations is kept. Owners (e.g.
    `PeerStorage`) keep their pending state for this batch in `owners`; it
    reaches them through `on_committed` only after the commit succeeded.
    """

    __slots__ = ("_abandoned", "_ops", "_puts", "engine", "owners")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reset()

    def _reset(self) -> None:
        self._puts: list[tuple[bytes, bytes]] = []
        self._ops: list[tuple[int, Any, Any]] = []
        self.owners: dict[BatchOwner, Any] = {}
        self._abandoned: str | None = None

    def put(self, key: bytes, value: bytes) -> None:
        self._puts.append((key, value))

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        self._puts.extend(items)

    def delete(self, key: bytes) -> None:
        """Delete `key` if present."""
        self._cut()
        self._ops.append((_DELETE, key, None))

    def delete_range(self, lo: bytes, hi: bytes) -> None:
        """Delete every key in [lo, hi)."""
        self._cut()
        self._ops.append((_DELETE_RANGE, lo, hi))

    def abandon(self, why: str) -> None:
        """Forbid committing this batch: an owner's state has moved past it."""
        self._abandoned = why

    def is_empty(self) -> bool:
        return not (self._puts or self._ops or self.owners)

    def commit(self) -> None:
        """Make everything in the batch durable at once (see `Engine.write`)."""
        self.engine.write(self)

    def _cut(self) -> None:
        if self._puts:
            self._ops.append((_PUTS, self._puts, None))
            self._puts = []

    def _take(self) -> tuple[list[tuple[int, Any, Any]], dict[BatchOwner, Any]]:
        self._cut()
        return self._ops, self.owners


class Engine:
    """A store's LMDB environment. Not for use by several threads at once."""

    def __init__(
        self, path: str | os.PathLike[str], *, sync: bool = True, map_size: int = DEFAULT_MAP_SIZE
    ) -> None:
        self.path = os.fspath(path)
        os.makedirs(self.path, exist_ok=True)
        self._env = lmdb.open(
            self.path,
            map_size=map_size,
            subdir=True,
            sync=sync,
            metasync=True,
            writemap=False,
            max_dbs=0,
        )
        self.snapshot_sources = SnapshotSources()
        """Read transactions of snapshots being generated: closed before the env."""

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, store_id: int, cluster_id: int, **kwargs: Any
    ) -> Engine:
        """Open a store's data dir, claiming it on first open.

        Raises `IdentMismatch` if it belongs to another store or cluster.
        """
        engine = cls(path, **kwargs)
        ident = engine.ident()
        if ident is None:
            batch = engine.batch()
            batch.put(keys.STORE_IDENT_KEY, pack((cluster_id, store_id)))
            batch.commit()
        elif ident != (cluster_id, store_id):
            engine.close()
            raise IdentMismatch(
                f"{engine.path} belongs to store {ident[1]} of cluster {ident[0]}, "
                f"not store {store_id} of cluster {cluster_id}"
            )
        return engine

    def ident(self) -> tuple[int, int] | None:
        """(cluster_id, store_id) of the store owning this dir, if claimed."""
        value = self.get(keys.STORE_IDENT_KEY)
        return None if value is None else tuple(unpack(value))

    def batch(self) -> WriteBatch:
        return WriteBatch(self)

    def read(self) -> Txn:
        """A read transaction: one consistent view; use it as a context manager."""
        return self._begin()

    def _begin(self, write: bool = False) -> Txn:
        return cast(Txn, self._env.begin(write=write))

    def get(self, key: bytes) -> bytes | None:
        with self._begin() as txn:
            return txn.get(key)

    def write(self, batch: WriteBatch) -> None:
        """Commit `batch` in one write transaction and one fsync, then tell
        its owners. On `StorageFull` nothing was written and the batch is
        kept intact, so it can be committed again."""
        if batch._abandoned:
            raise StorageError(f"batch abandoned: {batch._abandoned}")
        ops, pending = batch._take()
        while ops:
            try:
                self._write_once(ops)
                break
            except lmdb.MapFullError:
                self._grow()
            except lmdb.Error as e:
                if _is_disk_full(e, self.path):
                    raise StorageFull(f"{self.path}: no room to commit: {e}") from e
                raise
        batch._reset()
        for owner, p in pending.items():
            owner.on_committed(p)

    def _write_once(self, ops: list[tuple[int, Any, Any]]) -> None:
        txn = self._begin(write=True)
        try:
            cursor = txn.cursor()
            for kind, a, b in ops:
                if kind == _PUTS:
                    cursor.putmulti(a)
                elif kind == _DELETE:
                    txn.delete(a)
                else:
                    _delete_range(cursor, a, b)
        except BaseException:
            txn.abort()
            raise
        txn.commit()

    def delete_some(self, lo: bytes, hi: bytes, max_keys: int) -> bool:
        """Delete at most `max_keys` keys of [lo, hi) in one committed
        transaction, so clearing a big range never holds more than that many
        dirty pages in memory. Returns whether keys of the range remain."""
        while True:
            txn = self._begin(write=True)
            try:
                cursor = txn.cursor()
                more = cursor.set_range(lo) and _below(cursor, hi)
                n = 0
                while more and n < max_keys:
                    more = cursor.delete() and _below(cursor, hi)
                    n += 1
            except lmdb.MapFullError:
                txn.abort()
                self._grow()
                continue
            except BaseException:
                txn.abort()
                raise
            txn.commit()
            return more

    def _grow(self) -> None:
        self._env.set_mapsize(self.map_size() * 2)

    def map_size(self) -> int:
        return self._env.info()["map_size"]

    def close(self) -> None:
        self.snapshot_sources.close_all()
        self._env.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _delete_range(cursor: Cursor, lo: bytes, hi: bytes) -> None:
    if not cursor.set_range(lo):
        return
    while cursor.key() < hi:
        if not cursor.delete():
            return


def _below(cursor: Cursor, hi: bytes) -> bool:
    """Whether the cursor is on a key < hi (an unpositioned cursor's key is b"")."""
    key = cursor.key()
    return bool(key) and key < hi


def _is_disk_full(e: lmdb.Error, path: str) -> bool:
    """Whether a failed commit means "no room". LMDB reports a short write as
    EIO, which a filling disk usually produces, so EIO counts when the disk
    (or the file-size limit) is nearly exhausted."""
    code = getattr(e, "code", None)
    if isinstance(e, lmdb.DiskError) or code in _DISK_FULL_ERRNOS:
        return True
    return code == errno.EIO and _room_left(path) < _LOW_ROOM


def _room_left(path: str) -> int:
    st = os.statvfs(path)
    room = st.f_bavail * st.f_frsize
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        room = min(room, limit - os.path.getsize(os.path.join(path, "data.mdb")))
    return room
