"""The per-region state records stored next to the Raft log, and the value
codecs of everything the storage layer writes (see `keys` for the layout)."""

from __future__ import annotations

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


def encode_entry(e: Entry) -> bytes:
    return pack((e.term, e.index, e.type, e.data))


def decode_entry(value: bytes) -> Entry:
    term, index, typ, data = unpack(value)
    return Entry(term, index, EntryType(typ), data)


def encode_hard_state(hs: HardState) -> bytes:
    return pack((hs.term, hs.vote, hs.commit))


def decode_hard_state(value: bytes) -> HardState:
    return HardState(*unpack(value))
