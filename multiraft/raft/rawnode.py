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
from .errors import RaftError, StepLocalMessage, StepPeerNotFound
from .raft import Raft
from .storage import Storage
from .tracker import Progress
from .types import (
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
    StateType,
)


class SnapshotStatus(IntEnum):
    """Numbered as etcd-raft's SnapshotStatus."""

    FINISH = 1
    FAILURE = 2


@dataclass(slots=True)
class Ready:
    """Everything the application must do after one round of input.

    A field that did not change is None (`soft_state`, `hard_state`,
    `snapshot`) or empty (the lists).

    Order: persist `snapshot`, `entries` and `hard_state` (fsync if
    `must_sync`) before sending `messages`; apply `committed_entries` after
    the entries they may overlap with are persisted. One exception, as in
    etcd-raft: a leader whose term and vote are already persisted may send
    its appends while it persists the same entries (Raft thesis 10.2.1),
    since its own log counts toward commit only after `advance`.
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    read_states: list[ReadState] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    committed_entries: list[Entry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    must_sync: bool = False


@dataclass(slots=True)
class BasicStatus:
    """What an application may read of a node at any time, cheaply."""

    id: int
    hard_state: HardState
    soft_state: SoftState
    applied: int
    last_index: int
    """The index of the last entry in the log (a proposal just made has it)."""
    pending_conf_index: int
    """Index of the latest membership change proposed while leader: a new one
    waits until `applied` reaches it."""
    lead_transferee: int

    @property
    def is_leader(self) -> bool:
        return self.soft_state.raft_state == StateType.LEADER


@dataclass(slots=True)
class Status(BasicStatus):
    """`BasicStatus`, the configuration, and on a leader its followers' progress."""

    conf_state: ConfState
    progress: dict[int, Progress]


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

    def propose(self, data: bytes) -> RaftError | None:
        """Propose `data` for the log; returns ProposalDropped when it cannot."""
        return self.propose_batch([data])

    def propose_batch(self, datas: list[bytes]) -> RaftError | None:
        """Propose several entries at once: one append, one MsgApp per follower."""
        return self._propose([Entry(0, 0, EntryType.NORMAL, d) for d in datas])

    def propose_conf_change(self, cc: ConfChange) -> RaftError | None:
        return self._propose([Entry(0, 0, EntryType.CONF_CHANGE, cc.encode())])

    def _propose(self, entries: list[Entry]) -> RaftError | None:
        r = self.raft
        return r.step(Message(MessageType.PROP, frm=r.id, entries=entries))

    def step(self, m: Message) -> RaftError | None:
        """Feed one message received from another node. What cannot be taken
        (a local message type from the network, a response from a node not in
        the configuration, a proposal with no leader to go to) is returned as
        an error and changes nothing: the caller may log it or ignore it."""
        if m.type in LOCAL_MESSAGES:
            return StepLocalMessage(f"cannot step local message {m.type.name}")
        if m.type in RESPONSE_MESSAGES and m.frm not in self.raft.prs.progress:
            return StepPeerNotFound(f"{m.type.name} from unknown node {m.frm}")
        return self.raft.step(m)

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
        # Field by field: called for every busy region twice a turn, it
        # builds no SoftState or HardState to compare.
        ss, hs = self._prev_soft_state, self._prev_hard_state
        if r.lead != ss.lead or r.state != ss.raft_state:
            return True
        term, vote, commit = r.term, r.vote, log.committed
        if (term != hs.term or vote != hs.vote or commit != hs.commit) and (term or vote or commit):
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
        rd.snapshot = log.unstable.snapshot
        prev = self._prev_hard_state
        rd.must_sync = bool(rd.entries) or hs.vote != prev.vote or hs.term != prev.term
        return rd

    def advance(self, rd: Ready) -> None:
        """The application has persisted, sent and applied `rd`."""
        r = self.raft
        log = r.raft_log
        if rd.hard_state is not None:
            self._prev_hard_state = rd.hard_state
        if rd.committed_entries:
            log.applied_to(rd.committed_entries[-1].index)
            r.reduce_uncommitted_size(rd.committed_entries)
        elif rd.snapshot is not None:
            log.applied_to(rd.snapshot.metadata.index)
        if rd.entries:
            last = rd.entries[-1]
            log.stable_to(last.index, last.term)
        if rd.snapshot is not None:
            log.stable_snap_to(rd.snapshot.metadata.index)
        r.on_persisted()

    def broadcast_commit_of(self, index: int) -> None:
        """On a leader: once entry `index` commits, tell every follower at
        once (for an entry they should apply without delay, such as a split
        whose new regions must exist before their leaders' vote requests
        arrive)."""
        self.raft.broadcast_commit_of(index)

    def committing(self) -> bool:
        """A leader whose log has entries not yet committed: a store may hold
        new proposals until they commit, so the next entry carries every
        command that arrived meanwhile (group commit)."""
        r = self.raft
        return r.state == StateType.LEADER and r.raft_log.last_index() > r.raft_log.committed

    def lease_read_index(self) -> int:
        """On a leader that has committed an entry of its own term, its commit
        index: where a read served under a leader lease must wait for the
        state machine (Raft thesis §6.4.1). Otherwise 0 (use ReadIndex)."""
        r = self.raft
        if r.state != StateType.LEADER or not r.committed_entry_in_current_term():
            return 0
        return r.raft_log.committed

    def basic_status(self) -> BasicStatus:
        r = self.raft
        return BasicStatus(
            r.id,
            r.hard_state(),
            r.soft_state(),
            r.raft_log.applied,
            r.raft_log.last_index(),
            r.pending_conf_index,
            r.lead_transferee,
        )

    def status(self) -> Status:
        r = self.raft
        b = self.basic_status()
        progress = dict(r.prs.progress) if r.state == StateType.LEADER else {}
        return Status(
            b.id,
            b.hard_state,
            b.soft_state,
            b.applied,
            b.last_index,
            b.pending_conf_index,
            b.lead_transferee,
            r.prs.conf_state(),
            progress,
        )

    def pending_snapshot(self) -> Snapshot | None:
        """A snapshot stepped in and accepted that no Ready has handed out yet
        (None if the last one offered brought nothing new)."""
        return self.raft.raft_log.unstable.snapshot
