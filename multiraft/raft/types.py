"""Values that flow in and out of the Raft core.

Entries, messages and states are plain slotted dataclasses: cheap to build in
the hot path, and each has a compact msgpack-ready form (`to_wire` /
`from_wire`) made of lists and ints only, so the transport and the storage
layers can encode whole batches in one `msgpack.packb` call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from operator import itemgetter
from typing import Any, NamedTuple, cast

import msgpack

NONE = 0
"""The id meaning "no node" (no leader, no vote)."""


class MessageType(IntEnum):
    """Numbered as etcd-raft's MessageType (MsgHup = 0 ... MsgPreVoteResp = 18)."""

    HUP = 0  # local: start an election
    BEAT = 1  # local: leader sends heartbeats
    PROP = 2  # propose entries
    APP = 3
    APP_RESP = 4
    VOTE = 5
    VOTE_RESP = 6
    SNAP = 7
    HEARTBEAT = 8
    HEARTBEAT_RESP = 9
    UNREACHABLE = 10  # local: the transport could not reach `frm`
    SNAP_STATUS = 11  # local: outcome of sending a snapshot to `frm`
    CHECK_QUORUM = 12  # local: leader checks it still hears from a quorum
    TRANSFER_LEADER = 13
    TIMEOUT_NOW = 14
    READ_INDEX = 15
    READ_INDEX_RESP = 16
    PRE_VOTE = 17
    PRE_VOTE_RESP = 18


LOCAL_MESSAGES = frozenset(
    {
        MessageType.HUP,
        MessageType.BEAT,
        MessageType.UNREACHABLE,
        MessageType.SNAP_STATUS,
        MessageType.CHECK_QUORUM,
    }
)
RESPONSE_MESSAGES = frozenset(
    {
        MessageType.APP_RESP,
        MessageType.VOTE_RESP,
        MessageType.HEARTBEAT_RESP,
        MessageType.UNREACHABLE,
        MessageType.READ_INDEX_RESP,
        MessageType.PRE_VOTE_RESP,
    }
)


def vote_response_type(t: MessageType) -> MessageType:
    """The response type that answers a vote or pre-vote request."""
    if t == MessageType.VOTE:
        return MessageType.VOTE_RESP
    if t == MessageType.PRE_VOTE:
        return MessageType.PRE_VOTE_RESP
    raise ValueError(f"not a vote message: {t!r}")


class EntryType(IntEnum):
    NORMAL = 0
    CONF_CHANGE = 1


class ConfChangeType(IntEnum):
    """Numbered as etcd-raft's ConfChangeType."""

    ADD_NODE = 0
    REMOVE_NODE = 1
    UPDATE_NODE = 2
    """Membership stays as it is (the application may update its own address book)."""
    ADD_LEARNER_NODE = 3


class StateType(IntEnum):
    FOLLOWER = 0
    CANDIDATE = 1
    LEADER = 2
    PRE_CANDIDATE = 3


class Entry(NamedTuple):
    """One log entry. A NamedTuple: the core builds one per proposal and per
    replica, and a tuple is the cheapest immutable value Python has."""

    term: int
    index: int  # type: ignore[assignment]  # shadows tuple.index, which no one calls
    type: EntryType = EntryType.NORMAL
    data: bytes = b""

    def size(self) -> int:
        """Approximate encoded size, used for message and Ready size limits."""
        return len(self.data) + 12

    def to_wire(self) -> list[Any]:
        return [self.term, self.index, int(self.type), self.data]

    @staticmethod
    def from_wire(w: list[Any]) -> Entry:
        term, index, typ, data = w
        kind = _ENTRY_TYPES.get(typ)
        if kind is None:
            raise ValueError(f"{typ!r} is not a valid EntryType")
        return Entry(term, index, kind, data)


_ENTRY_TYPES = {t.value: t for t in EntryType}
"""Wire value -> EntryType: a dict lookup costs a fifth of the enum's call."""


NO_LIMIT = 2**63 - 1
"""A size limit that never applies."""

_DATA = itemgetter(3)


def entries_size(ents: list[Entry]) -> int:
    return 12 * len(ents) + sum(map(len, map(_DATA, ents)))


def limit_size(ents: list[Entry], max_size: int) -> list[Entry]:
    """The longest prefix of `ents` within `max_size` bytes, but at least one entry."""
    if len(ents) <= 1 or max_size >= NO_LIMIT or entries_size(ents) <= max_size:
        return ents
    n, size = 1, ents[0].size()
    while n < len(ents):
        size += ents[n].size()
        if size > max_size:
            break
        n += 1
    return ents[:n]


@dataclass(slots=True, frozen=True)
class HardState:
    """What a node must persist before it sends messages that depend on it."""

    term: int = 0
    vote: int = NONE
    commit: int = 0

    def is_empty(self) -> bool:
        return self == EMPTY_HARD_STATE

    def to_wire(self) -> list[Any]:
        return [self.term, self.vote, self.commit]

    @staticmethod
    def from_wire(w: list[Any]) -> HardState:
        return HardState(*w)


EMPTY_HARD_STATE = HardState()


@dataclass(slots=True, frozen=True)
class SoftState:
    """Volatile state worth reporting (who leads, what role this node has)."""

    lead: int = NONE
    raft_state: StateType = StateType.FOLLOWER


@dataclass(slots=True, frozen=True)
class ConfState:
    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()

    def to_wire(self) -> list[Any]:
        return [list(self.voters), list(self.learners)]

    @staticmethod
    def from_wire(w: list[Any]) -> ConfState:
        return ConfState(tuple(w[0]), tuple(w[1]))


@dataclass(slots=True, frozen=True)
class ConfChange:
    """One membership change; carried as the data of a CONF_CHANGE entry."""

    type: ConfChangeType
    node_id: int
    context: bytes = b""

    def to_wire(self) -> list[Any]:
        return [int(self.type), self.node_id, self.context]

    @staticmethod
    def from_wire(w: list[Any]) -> ConfChange:
        return ConfChange(ConfChangeType(w[0]), w[1], w[2])

    def encode(self) -> bytes:
        """The data of the CONF_CHANGE entry that carries this change."""
        return cast(bytes, msgpack.packb(self.to_wire()))

    @staticmethod
    def decode(data: bytes) -> ConfChange:
        return ConfChange.from_wire(msgpack.unpackb(data))


@dataclass(slots=True, frozen=True)
class SnapshotMetadata:
    conf_state: ConfState = ConfState()
    index: int = 0
    term: int = 0

    def to_wire(self) -> list[Any]:
        return [self.conf_state.to_wire(), self.index, self.term]

    @staticmethod
    def from_wire(w: list[Any]) -> SnapshotMetadata:
        return SnapshotMetadata(ConfState.from_wire(w[0]), w[1], w[2])


@dataclass(slots=True, frozen=True)
class Snapshot:
    """State machine data up to `metadata.index`; `data` is opaque to Raft."""

    data: bytes = b""
    metadata: SnapshotMetadata = SnapshotMetadata()

    def is_empty(self) -> bool:
        return self.metadata.index == 0

    def to_wire(self) -> list[Any]:
        return [self.data, self.metadata.to_wire()]

    @staticmethod
    def from_wire(w: list[Any]) -> Snapshot:
        return Snapshot(w[0], SnapshotMetadata.from_wire(w[1]))


EMPTY_SNAPSHOT = Snapshot()


@dataclass(slots=True)
class Message:
    """A Raft message; local messages (HUP, BEAT, ...) never leave the node."""

    type: MessageType
    to: int = NONE
    frm: int = NONE
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""

    def to_wire(self) -> list[Any]:
        return [
            int(self.type),
            self.to,
            self.frm,
            self.term,
            self.log_term,
            self.index,
            [e.to_wire() for e in self.entries],
            self.commit,
            self.snapshot.to_wire() if self.snapshot is not None else None,
            self.reject,
            self.reject_hint,
            self.context,
        ]

    @staticmethod
    def from_wire(w: list[Any]) -> Message:
        (typ, to, frm, term, log_term, index, ents, commit, snap, reject, hint, ctx) = w
        kind = _MESSAGE_TYPES.get(typ)
        if kind is None:
            raise ValueError(f"{typ!r} is not a valid MessageType")
        return Message(
            kind,
            to,
            frm,
            term,
            log_term,
            index,
            [Entry.from_wire(e) for e in ents],
            commit,
            Snapshot.from_wire(snap) if snap is not None else None,
            bool(reject),
            hint,
            ctx,
        )

    def encode(self) -> bytes:
        """This message as bytes (msgpack of `to_wire`), as `ConfChange.encode`."""
        return cast(bytes, msgpack.packb(self.to_wire()))

    @staticmethod
    def decode(data: bytes) -> Message:
        return Message.from_wire(msgpack.unpackb(data))


_MESSAGE_TYPES = {t.value: t for t in MessageType}
"""Wire value -> MessageType (as `_ENTRY_TYPES`): every message received
from another store goes through it."""


@dataclass(slots=True, frozen=True)
class ReadState:
    """A read request (`request_ctx`) may be served once applied >= `index`."""

    index: int
    request_ctx: bytes
