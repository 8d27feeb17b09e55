"""The key layout of a store's LMDB environment.

One unnamed LMDB database holds everything, so one write transaction covers
the Raft logs and states of every region and the user data at once. Integers
in keys are big-endian u64, so LMDB's byte order is numeric order: a region's
log is one contiguous, index-ordered key range, and all of a region's local
keys sit together under its prefix. Values are msgpack, except what the hot
path writes for every Ready (log entries, hard states: fixed binary, see
`states`) and user values (as given).

=======================  =======================================  =================================
key                      bytes                                    value
=======================  =======================================  =================================
store ident              ``00 01``                                ``[cluster_id, store_id]``
raft log entry           ``01 + region_id(8) + 01 + index(8)``    ``term(8) type(1) data`` (raw)
hard state               ``01 + region_id(8) + 02``               ``HardState.to_wire()``
apply state              ``01 + region_id(8) + 03``               ``[applied, trunc_i, trunc_term]``
region state             ``01 + region_id(8) + 04``               ``[desc, start, end, conf_state]``
client session           ``01 + region_id(8) + 05 + client(8)``   opaque to storage (the store's)
region tombstone         ``01 + region_id(8) + 07``               ``[conf_ver, peer_id]`` removed
snapshot ingest pending  ``01 + region_id(8) + 06``               the staged ``Snapshot.to_wire()``
user data                ``7a ("z") + user_key``                  the user's value bytes (raw)
=======================  =======================================  =================================

Notes:

- The apply state's truncated index/term are the log's dummy entry: the
  first stored log index is ``trunc_index + 1``. Ingesting a snapshot sets
  them to the snapshot's index/term, so with the region state's conf state
  they are the metadata of the region's latest snapshot; snapshots are not
  kept on disk but generated on demand from one read transaction.
- The region state's ``descriptor`` is opaque bytes owned by the store;
  ``start``/``end`` is the region's user-key range (``end == b""``: +inf),
  which is all the storage layer needs to know about it.
- An ingest-pending marker exists only while a received snapshot replaces
  the region's data in several bounded transactions (see `snapshot`); its
  snapshot names the staging file, so a restart redoes the ingest.
- User data of all regions shares one ordered key space: a region's data is
  the key range ``[z + start, z + end)``. Every data key is below ``b"{"``
  (``z`` + 1), the end of the data space.
"""

from __future__ import annotations

import struct

STORE_IDENT_KEY = b"\x00\x01"
LOCAL_PREFIX = b"\x01"
DATA_PREFIX = b"z"
DATA_END = b"{"

RAFT_LOG_SUFFIX = b"\x01"
HARD_STATE_SUFFIX = b"\x02"
APPLY_STATE_SUFFIX = b"\x03"
REGION_STATE_SUFFIX = b"\x04"
SESSION_SUFFIX = b"\x05"
TOMBSTONE_SUFFIX = b"\x07"
INGEST_SUFFIX = b"\x06"

_U64 = struct.Struct(">Q")
_REGION = struct.Struct(">BQ")
_LOG_KEY = struct.Struct(">BQBQ")
LOG_KEY_LEN = _LOG_KEY.size
pack_u64 = _U64.pack


def region_prefix(region_id: int) -> bytes:
    """All local keys of a region start with this."""
    return _REGION.pack(1, region_id)


def raft_log_prefix(region_id: int) -> bytes:
    """A region's log keys are this prefix + big-endian index."""
    return _REGION.pack(1, region_id) + RAFT_LOG_SUFFIX


def raft_log_key(region_id: int, index: int) -> bytes:
    return _LOG_KEY.pack(1, region_id, 1, index)


def raft_log_index(key: bytes) -> int:
    """The index encoded in a raft log key."""
    return _U64.unpack_from(key, 10)[0]


def hard_state_key(region_id: int) -> bytes:
    return _REGION.pack(1, region_id) + HARD_STATE_SUFFIX


def apply_state_key(region_id: int) -> bytes:
    return _REGION.pack(1, region_id) + APPLY_STATE_SUFFIX


def region_state_key(region_id: int) -> bytes:
    return _REGION.pack(1, region_id) + REGION_STATE_SUFFIX


def session_prefix(region_id: int) -> bytes:
    """A region's client sessions: this prefix + big-endian client id. They are
    replicated state, so snapshots carry them with the data."""
    return _REGION.pack(1, region_id) + SESSION_SUFFIX


def tombstone_key(region_id: int) -> bytes:
    """Left where a removed replica was (see `store.apply.destroy_region`)."""
    return _REGION.pack(1, region_id) + TOMBSTONE_SUFFIX


def ingest_marker_key(region_id: int) -> bytes:
    """Present while a snapshot ingest of the region is under way."""
    return _REGION.pack(1, region_id) + INGEST_SUFFIX


def data_key(user_key: bytes) -> bytes:
    return DATA_PREFIX + user_key


def user_key(key: bytes) -> bytes:
    """The user key of a data key."""
    if not key.startswith(DATA_PREFIX):
        raise ValueError(f"not a data key: {key!r}")
    return key[1:]


def data_range(start: bytes, end: bytes) -> tuple[bytes, bytes]:
    """The data keys [lo, hi) of user keys [start, end); end b"" means +inf."""
    return DATA_PREFIX + start, (DATA_PREFIX + end) if end else DATA_END
