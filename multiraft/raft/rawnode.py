"""RawNode: the only API for driving a Raft node, with etcd-raft's semantics.

The application calls `tick()` on its clock, feeds received messages to
`step()`, and loops: `if has_ready(): rd = ready()`; persist `rd.snapshot`,
`rd.entries` and `rd.hard_state`; then send `rd.messages`; apply
`rd.committed_entries`; then `advance(rd)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from .config import Config
from .errors import StepLocalMessage, StepPeerNotFound
from .raft import Raft
from .storage import Storage
from .tracker import Progress
from .types import (
    EMPTY_HARD_STATE,
    EMPTY_SNAPSHOT,
    LOCAL_MESSAGES,
    RESPONSE_MESSAGES,
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
    SoftState,
)


class SnapshotStatus(IntEnum):
    """Numbered as etcd-raft's SnapshotStatus."""

    FINISH = 1
    FAILURE = 2


@dataclass(slots=True)
class Ready:
    """Everything the application must do after one round of input.

    Order: persist `snapshot`, `entries` and `hard_state` (fsync if
    `must_sync`) before sending `messages`; apply `committed_entries` after
    the entries they may overlap with are persisted. One exception, as in
    etcd-raft: a leader whose term and vote are already persisted may send
    its appends while it persists the same entries (Raft thesis 10.2.1),
    since its own log counts toward commit only after `advance`.
    """

    soft_state: SoftState | None = None
    hard_state: HardState = EMPTY_HARD_STATE
    read_states: list[ReadState] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot = EMPTY_SNAPSHOT
    committed_entries: list[Entry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    must_sync: bool = False


@dataclass(slots=True)
class Status:
    id: int
    hard_state: HardState
    soft_state: SoftState
    applied: int
    progress: dict[int, Progress]
    lead_transferee: int


class RawNode:
    def __init__(self, config: Config, storage: Storage) -> None:
        self.raft = Raft(config, storage)
        self._prev_soft_state = self.raft.soft_state()
        self._prev_hard_state = self.raft.hard_state()

    # -- input ---------------------------------------------------------------

    def tick(self) -> None:
        self.raft.tick()

    def campaign(self) -> None:
        self.raft.step(Message(MessageType.HUP, frm=self.raft.id))

    def propose(self, data: bytes) -> None:
        """Propose `data` for the log; raises ProposalDropped when it cannot."""
        self._propose(Entry(0, 0, EntryType.NORMAL, data))

    def propose_batch(self, datas: list[bytes]) -> None:
        """Propose several entries at once: one append, one MsgApp per follower."""
        r = self.raft
        ents = [Entry(0, 0, EntryType.NORMAL, d) for d in datas]
        r.step(Message(MessageType.PROP, frm=r.id, entries=ents))

    def propose_conf_change(self, cc: ConfChange) -> None:
        self._propose(Entry(0, 0, EntryType.CONF_CHANGE, cc.encode()))

    def _propose(self, entry: Entry) -> None:
        r = self.raft
        r.step(Message(MessageType.PROP, frm=r.id, entries=[entry]))

    def step(self, m: Message) -> None:
        """Feed one message received from another node."""
        if m.type in LOCAL_MESSAGES:
            raise StepLocalMessage(f"cannot step local message {m.type.name}")
        if m.type in RESPONSE_MESSAGES and m.frm not in self.raft.prs.progress:
            raise StepPeerNotFound(f"{m.type.name} from unknown node {m.frm}")
        self.raft.step(m)

    def read_index(self, ctx: bytes) -> None:
        """Ask for a linearizable read point; a ReadState with `ctx` follows."""
        self.raft.step(Message(MessageType.READ_INDEX, context=ctx))

    def transfer_leader(self, transferee: int) -> None:
        self.raft.step(Message(MessageType.TRANSFER_LEADER, frm=transferee))

    def report_unreachable(self, node_id: int) -> None:
        self.raft.step(Message(MessageType.UNREACHABLE, frm=node_id))

    def report_snapshot(self, node_id: int, status: SnapshotStatus) -> None:
        reject = status == SnapshotStatus.FAILURE
        self.raft.step(Message(MessageType.SNAP_STATUS, frm=node_id, reject=reject))

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        return self.raft.apply_conf_change(cc)

    # -- output ----------------------------------------------------------------

    def has_ready(self) -> bool:
        r = self.raft
        log = r.raft_log
        if r.msgs or log.unstable.entries or r.read_states:
            return True
        if r.soft_state() != self._prev_soft_state:
            return True
        hs = r.hard_state()
        if hs != self._prev_hard_state and not hs.is_empty():
            return True
        return log.has_pending_snapshot() or log.has_next_ents()

    def ready(self) -> Ready:
        r = self.raft
        log = r.raft_log
        rd = Ready(
            entries=log.unstable_entries(),
            committed_entries=log.next_ents(),
            messages=r.msgs,
            read_states=r.read_states,
        )
        r.msgs = []
        r.read_states = []
        ss = r.soft_state()
        if ss != self._prev_soft_state:
            rd.soft_state = ss
            self._prev_soft_state = ss
        hs = r.hard_state()
        if hs != self._prev_hard_state:
            rd.hard_state = hs
        if log.unstable.snapshot is not None:
            rd.snapshot = log.unstable.snapshot
        prev = self._prev_hard_state
        rd.must_sync = bool(rd.entries) or hs.vote != prev.vote or hs.term != prev.term
        return rd

    def advance(self, rd: Ready) -> None:
        """The application has persisted, sent and applied `rd`."""
        r = self.raft
        log = r.raft_log
        if not rd.hard_state.is_empty():
            self._prev_hard_state = rd.hard_state
        if rd.committed_entries:
            log.applied_to(rd.committed_entries[-1].index)
            r.reduce_uncommitted_size(rd.committed_entries)
        elif not rd.snapshot.is_empty():
            log.applied_to(rd.snapshot.metadata.index)
        if rd.entries:
            last = rd.entries[-1]
            log.stable_to(last.index, last.term)
        if not rd.snapshot.is_empty():
            log.stable_snap_to(rd.snapshot.metadata.index)
        r.on_persisted()

    def status(self) -> Status:
        r = self.raft
        progress = dict(r.prs.progress) if r.state == r.state.LEADER else {}
        return Status(
            r.id,
            r.hard_state(),
            r.soft_state(),
            r.raft_log.applied,
            progress,
            r.lead_transferee,
        )
