"""Installing a received snapshot: the staging file its data arrives in,
and an ingest that replaces the region's data atomically without one
unbounded LMDB transaction.

A staging file is a run of records ``len(4) crc32(4) msgpack([k0, v0, ...])``
(big-endian), one per chunk received, fsync'd before it is used.

An ingest is three steps:

1. `begin`: commit the region's ingest marker (see `keys`): the snapshot,
   whose header names the staging file;
2. `replace_data`: clear the region's key range and write the file's pairs,
   each in transactions of bounded size (LMDB keeps a write transaction's
   dirty pages in memory);
3. `finish`, in the store's turn batch: the Raft state, region state and
   sessions of the snapshot, and the marker's deletion, at once.

Nothing reads a region's data between 1 and 3 (the store freezes the
region's replica meanwhile, spreading 2 over its loop turns with
`replace_data_steps`), and a store that dies in between redoes 2 and 3 from
the marker at startup (`recover`) before the region's replica starts: both
are idempotent. The staging file is removed once 3 committed; files no marker
names are removed at startup.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import zlib
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, BinaryIO

import msgpack

from multiraft.raft.types import HardState, Snapshot

from . import keys, kv
from .errors import StorageError
from .peer_storage import PeerStorage
from .snapshot import SnapshotHeader, prefix_end
from .states import RegionState, pack, unpack

if TYPE_CHECKING:
    from .engine import Engine, WriteBatch

log = logging.getLogger(__name__)

STAGING_DIR = "snap"
"""Staging files live in this folder of the data dir."""
TXN_BYTES = 4 << 20
"""Bytes of pairs per transaction when an ingest writes a region's data."""
_RECORD = struct.Struct(">II")
_MAX_RECORD = 64 << 20


def staging_dir(engine: Engine) -> str:
    return os.path.join(engine.path, STAGING_DIR)


class StagingWriter:
    """Appends received chunks to a staging file; memory: one chunk."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._file: BinaryIO | None = open(path, "wb")  # noqa: SIM115 (closed by finish/abort)
        self.size = 0

    def write(self, flat: list[bytes]) -> None:
        assert self._file is not None
        body = msgpack.packb(flat, use_bin_type=True)
        self._file.write(_RECORD.pack(len(body), zlib.crc32(body)) + body)
        self.size += len(body)

    def finish(self) -> None:
        """Make the file durable (data and its directory entry) and close it."""
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        dir_fd = os.open(os.path.dirname(self.path), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def abort(self) -> None:
        """Close and remove the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        remove_file(self.path)


def read_staging(path: str) -> Iterator[list[bytes]]:
    """The chunks of a staging file, one at a time; a torn or corrupt file
    raises StorageError."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below, also by a generator's close)
    except OSError as e:
        raise StorageError(f"snapshot staging file unreadable: {e}") from None
    with f:
        while header := f.read(_RECORD.size):
            if len(header) != _RECORD.size:
                raise StorageError(f"{path}: torn record header")
            size, crc = _RECORD.unpack(header)
            body = f.read(size) if size <= _MAX_RECORD else b""
            if len(body) != size or zlib.crc32(body) != crc:
                raise StorageError(f"{path}: torn or corrupt record")
            yield unpack(body)


def remove_file(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def begin(engine: Engine, region_id: int, snap: Snapshot) -> SnapshotHeader:
    """Step 1: commit the marker; returns the snapshot's (staged) header."""
    header = SnapshotHeader.decode(snap.data, staged=True)
    batch = engine.batch()
    batch.put(keys.ingest_marker_key(region_id), pack(snap.to_wire()))
    batch.commit()
    return header


def replace_data(engine: Engine, header: SnapshotHeader, txn_bytes: int = TXN_BYTES) -> int:
    """Step 2: the region's range holds exactly the staged pairs afterwards;
    returns how many were written."""
    written = 0
    for written in replace_data_steps(engine, header, txn_bytes):  # noqa: B007
        pass
    return written


def replace_data_steps(
    engine: Engine, header: SnapshotHeader, txn_bytes: int = TXN_BYTES
) -> Generator[int, None, None]:
    """Step 2 one committed transaction at a time, so a store can spread a
    big install over its loop turns; yields the pairs written so far."""
    if not header.staged or os.path.basename(header.staged) != header.staged:
        raise StorageError(f"bad staging file name {header.staged!r}")
    path = os.path.join(staging_dir(engine), header.staged)
    lo, hi = keys.data_range(header.start, header.end)
    while engine.delete_some(lo, hi, kv.CLEAR_KEYS_PER_TXN):
        yield 0
    z = keys.DATA_PREFIX
    batch, size, n = engine.batch(), 0, 0
    for flat in read_staging(path):
        batch.put_many((z + flat[i], flat[i + 1]) for i in range(0, len(flat), 2))
        size += sum(len(b) for b in flat)
        n += len(flat) // 2
        if size >= txn_bytes:
            batch.commit()
            batch, size = engine.batch(), 0
            yield n
    batch.commit()
    yield n


def finish(batch: WriteBatch, storage: PeerStorage, snap: Snapshot, header: SnapshotHeader) -> None:
    """Step 3, in `batch`: the region's Raft state, range and sessions
    become the snapshot's, and the marker goes."""
    meta = snap.metadata
    region = RegionState(header.descriptor, header.start, header.end, meta.conf_state)
    storage.apply_snapshot(batch, snap, region)
    hs = storage.hard_state
    if hs.commit < meta.index:
        # It holds committed entries only. In a turn, the Ready's HardState
        # says so too; a restart that finishes the ingest has no Ready.
        term = max(hs.term, meta.term)
        storage.set_hard_state(
            batch, HardState(term, hs.vote if term == hs.term else 0, meta.index)
        )
    prefix = keys.session_prefix(storage.region_id)
    batch.delete_range(prefix, prefix_end(prefix))
    s = header.sessions
    batch.put_many([(prefix + s[i], s[i + 1]) for i in range(0, len(s), 2)])
    batch.delete(keys.ingest_marker_key(storage.region_id))


def pending(engine: Engine) -> list[tuple[int, Snapshot]]:
    """(region_id, snapshot) of every ingest a restart must finish."""
    found = []
    region_id = 0
    with engine.read() as txn:
        cur = txn.cursor()
        while cur.set_range(keys.region_prefix(region_id + 1)):
            k = cur.key()
            if not k.startswith(keys.LOCAL_PREFIX) or len(k) < 9:
                break
            region_id = int.from_bytes(k[1:9], "big")
            value = txn.get(keys.ingest_marker_key(region_id))
            if value is not None:
                found.append((region_id, Snapshot.from_wire(unpack(value))))
    return found


def recover(engine: Engine) -> None:
    """At startup, before any replica starts: finish every pending ingest,
    then remove every staging file left behind."""
    for region_id, snap in pending(engine):
        header = SnapshotHeader.decode(snap.data, staged=True)
        log.info("region %d: finishing the ingest of snapshot %d", region_id, snap.metadata.index)
        replace_data(engine, header)
        batch = engine.batch()
        finish(batch, PeerStorage(engine, region_id), snap, header)
        batch.commit()
    folder = staging_dir(engine)
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            remove_file(os.path.join(folder, name))
