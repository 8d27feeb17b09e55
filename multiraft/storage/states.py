"""The per-region state records stored next to the Raft log, and the value
codecs of everything the storage layer writes (see `keys` for the layout)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import msgpack

from multiraft.raft.types import ConfState, Entry, EntryType, HardState

pack = msgpack.Packer().pack
"""One shared packer: faster than `msgpack.packb`, which builds one per call."""
unpack = msgpack.unpackb


@dataclass(slots=True, frozen=True)
class ApplyState:
    """How far the state machine got, and where the log now starts.

    `truncated_index`/`truncated_term` are the log's dummy entry (the last
    compacted or snapshotted entry): first_index = truncated_index + 1.
    """

    applied_index: int = 0
    truncated_index: int = 0
    truncated_term: int = 0

    def encode(self) -> bytes:
        return pack((self.applied_index, self.truncated_index, self.truncated_term))

    @staticmethod
    def decode(value: bytes) -> ApplyState:
        return ApplyState(*unpack(value))


@dataclass(slots=True, frozen=True)
class RegionState:
    """What storage knows of a region: its key range, its membership, and
    the store's descriptor (opaque here)."""

    descriptor: bytes = b""
    start: bytes = b""
    end: bytes = b""
    conf_state: ConfState = field(default_factory=ConfState)

    def encode(self) -> bytes:
        return pack((self.descriptor, self.start, self.end, self.conf_state.to_wire()))

    @staticmethod
    def decode(value: bytes) -> RegionState:
        d, s, e, cs = unpack(value)
        return RegionState(d, s, e, ConfState.from_wire(cs))


ENTRY_HEADER = struct.Struct(">QB")
"""A log entry's value: term (u64) and type (u8), then the data as is. Not
msgpack: the index is in the key, and this costs half as much per entry on
the hot path."""
_entry_header = ENTRY_HEADER.pack
_entry_fields = ENTRY_HEADER.unpack_from
_ENTRY_TYPES = tuple(EntryType)


def encode_entry(e: Entry) -> bytes:
    return _entry_header(e.term, e.type) + e.data


def decode_entry(index: int, value: bytes) -> Entry:
    term, typ = _entry_fields(value)
    return Entry(term, index, _ENTRY_TYPES[typ], value[9:])


def entry_term(value: bytes) -> int:
    return _entry_fields(value)[0]


HARD_STATE = struct.Struct(">QQQ")
"""A HardState's value: term, vote, commit (u64 each); written every Ready."""


def encode_hard_state(hs: HardState) -> bytes:
    return HARD_STATE.pack(hs.term, hs.vote, hs.commit)


def decode_hard_state(value: bytes) -> HardState:
    return HardState(*HARD_STATE.unpack(value))
