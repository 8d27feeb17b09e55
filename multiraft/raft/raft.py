"""Raft: one node's protocol state machine (terms, votes, roles, replication).

`step()` takes every input as a `Message`; outputs are appended to `msgs` and
to the log's unstable part, for `RawNode.ready()` to hand out. A message it
cannot take (a proposal with no leader to go to) comes back as an error
value, as in etcd-raft: ordinary peer traffic never raises. Each role has
its own table of small handlers; messages common to all roles (term checks,
votes, elections) are handled in `step()` itself.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from enum import Enum

from .config import Config, ReadOnlyOption
from .errors import Compacted, ProposalDropped, RaftError, SnapshotTemporarilyUnavailable
from .log import RaftLog
from .read_only import ReadOnly
from .storage import Storage
from .tracker import Progress, ProgressState, ProgressTracker, VoteResult, vote_result
from .types import (
    NONE,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    ReadState,
    Snapshot,
    SoftState,
    StateType,
    vote_response_type,
)
from .types import MessageType as MT

CAMPAIGN_TRANSFER = b"CampaignTransfer"
"""Context of a vote request caused by a leader transfer: it bypasses leases."""

Handler = Callable[[Message], RaftError | None]
"""A role's handler of one message type; an input it refuses is returned."""


class Campaign(Enum):
    PRE_ELECTION = "pre-election"
    ELECTION = "election"
    TRANSFER = "transfer"


class Raft:
    def __init__(self, config: Config, storage: Storage) -> None:
        config.validate()
        self.id = config.id
        self.raft_log = RaftLog(storage, config.max_committed_size_per_ready)
        self.max_msg_size = config.max_size_per_msg
        self.max_uncommitted_size = config.max_uncommitted_entries_size
        self.uncommitted_size = 0
        self.prs = ProgressTracker(config.max_inflight_msgs)
        self.check_quorum = config.check_quorum
        self.pre_vote = config.pre_vote
        self.disable_proposal_forwarding = config.disable_proposal_forwarding
        self.eager_commit = config.broadcast_commit
        self.broadcast_commit_at = 0
        self.beat_idle_followers_only = config.beat_idle_followers_only
        self.votes_held_ticks = config.election_tick if config.hold_votes_on_start else 0
        self.election_timeout = config.election_tick
        self.heartbeat_timeout = config.heartbeat_tick
        self.read_only = ReadOnly(config.read_only_option)
        self._rand = random.Random(config.id if config.seed is None else config.seed)

        self.term = 0
        self.vote = NONE
        self.lead = NONE
        self.state = StateType.FOLLOWER
        self.is_learner = False
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.pending_read_index_messages: list[Message] = []
        self.lead_transferee = NONE
        self.pending_conf_index = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = self.election_timeout
        self._tick: Callable[[], None] = self._tick_election
        self._step: Handler = self._step_follower
        self._build_handlers()

        hs, cs = storage.initial_state()
        self._apply_conf_state(cs)
        if not hs.is_empty():
            self._load_state(hs)
        if config.applied > self.raft_log.applied:
            self.raft_log.applied_to(config.applied)
        self.become_follower(self.term, NONE)

    def _build_handlers(self) -> None:
        self._leader_handlers: dict[MT, Handler] = {
            MT.BEAT: lambda m: self._bcast_heartbeat(),
            MT.CHECK_QUORUM: self._leader_check_quorum,
            MT.PROP: self._leader_propose,
            MT.READ_INDEX: self._leader_read_index,
            MT.APP_RESP: self._leader_append_response,
            MT.HEARTBEAT_RESP: self._leader_heartbeat_response,
            MT.SNAP_STATUS: self._leader_snap_status,
            MT.UNREACHABLE: self._leader_unreachable,
            MT.TRANSFER_LEADER: self._leader_transfer,
        }
        self._candidate_handlers: dict[MT, Handler] = {
            MT.PROP: self._drop_proposal,
            MT.APP: self._candidate_hears_leader,
            MT.HEARTBEAT: self._candidate_hears_leader,
            MT.SNAP: self._candidate_hears_leader,
            MT.VOTE_RESP: self._candidate_vote_response,
            MT.PRE_VOTE_RESP: self._candidate_vote_response,
        }
        self._follower_handlers: dict[MT, Handler] = {
            MT.PROP: self._follower_propose,
            MT.APP: self._follower_hears_leader,
            MT.HEARTBEAT: self._follower_hears_leader,
            MT.SNAP: self._follower_hears_leader,
            MT.TRANSFER_LEADER: self._forward_to_leader,
            MT.READ_INDEX: self._forward_to_leader,
            MT.TIMEOUT_NOW: lambda m: self._hup(Campaign.TRANSFER),
            MT.READ_INDEX_RESP: self._follower_read_index_response,
        }

    # -- state -------------------------------------------------------------------

    def soft_state(self) -> SoftState:
        return SoftState(self.lead, self.state)

    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.raft_log.committed)

    def _load_state(self, hs: HardState) -> None:
        log = self.raft_log
        if hs.commit < log.committed or hs.commit > log.last_index():
            raise AssertionError(
                f"{self.id} state.commit {hs.commit} is out of range "
                f"[{log.committed}, {log.last_index()}]"
            )
        log.committed = hs.commit
        self.term = hs.term
        self.vote = hs.vote

    def promotable(self) -> bool:
        """Whether this node may campaign: a voter with no snapshot pending."""
        return (
            self.id in self.prs.progress
            and not self.is_learner
            and not self.raft_log.has_pending_snapshot()
        )

    def committed_entry_in_current_term(self) -> bool:
        return self.raft_log.term(self.raft_log.committed) == self.term

    # -- sending -----------------------------------------------------------------

    def _send(self, m: Message) -> None:
        if m.frm == NONE:
            # Forwarded messages keep their sender: a forwarded leader
            # transfer names the transferee in `frm`.
            m.frm = self.id
        if m.type in (MT.VOTE, MT.VOTE_RESP, MT.PRE_VOTE, MT.PRE_VOTE_RESP):
            if m.term == 0:
                raise AssertionError(f"term should be set when sending {m.type.name}")
        elif m.type not in (MT.PROP, MT.READ_INDEX):
            # Proposals and read requests are forwarded as local messages.
            m.term = self.term
        self.msgs.append(m)

    def _send_append(self, to: int) -> None:
        self._maybe_send_append(to, send_if_empty=True)

    def _maybe_send_append(self, to: int, send_if_empty: bool) -> bool:
        """Send entries (or a snapshot) to `to`; False if nothing was sent."""
        pr = self.prs.progress[to]
        if pr.is_paused():
            return False
        log = self.raft_log
        if pr.next >= log.first_index():
            try:
                ents = log.entries(pr.next, self.max_msg_size)
            except Compacted:
                return self._maybe_send_snapshot(to)
            if not ents and not send_if_empty:
                return False
            prev = pr.next - 1
            m = Message(MT.APP, to, index=prev, log_term=log.term(prev), entries=ents)
            m.commit = log.committed
            if ents:
                if pr.state == ProgressState.REPLICATE:
                    last = ents[-1].index
                    pr.optimistic_update(last)
                    pr.inflights.add(last)
                elif pr.state == ProgressState.PROBE:
                    pr.probe_sent = True
            pr.appended_since_beat = True
            self._send(m)
            return True
        return self._maybe_send_snapshot(to)

    def _maybe_send_snapshot(self, to: int) -> bool:
        pr = self.prs.progress[to]
        if not pr.recent_active:
            return False
        try:
            snap = self.raft_log.snapshot()
        except SnapshotTemporarilyUnavailable:
            return False
        if snap.is_empty():
            raise AssertionError("need a non-empty snapshot")
        pr.become_snapshot(snap.metadata.index)
        self._send(Message(MT.SNAP, to, snapshot=snap))
        return True

    def _bcast_append(self) -> None:
        for node_id in sorted(self.prs.progress):
            if node_id != self.id:
                self._send_append(node_id)

    def broadcast_commit_of(self, index: int) -> None:
        """Once entry `index` (of this term) commits, tell every follower at
        once, as with `broadcast_commit` on: for an entry the followers
        should apply without waiting for the next append or heartbeat."""
        self.broadcast_commit_at = max(self.broadcast_commit_at, index)

    def _commit_broadcast_due(self) -> bool:
        if self.eager_commit:
            return True
        if 0 < self.broadcast_commit_at <= self.raft_log.committed:
            self.broadcast_commit_at = 0
            return True
        return False

    def _bcast_heartbeat(self, ctx: bytes | None = None) -> None:
        if ctx is None:
            ctx = self.read_only.last_pending_request_ctx()
        committed = self.raft_log.committed
        skip_appended = self.beat_idle_followers_only and not ctx
        for node_id, pr in self.prs.visit():
            if node_id == self.id:
                continue
            appended, pr.appended_since_beat = pr.appended_since_beat, False
            if appended and skip_appended:
                continue
            # A follower may not have the leader's committed entries yet:
            # never tell it to commit past what it is known to have.
            commit = min(pr.match, committed)
            self._send(Message(MT.HEARTBEAT, node_id, commit=commit, context=ctx))

    # -- ticking -----------------------------------------------------------------

    def tick(self) -> None:
        if self.votes_held_ticks:
            self.votes_held_ticks -= 1
        self._tick()

    def past_election_timeout(self) -> bool:
        return self.election_elapsed >= self.randomized_election_timeout

    def _reset_randomized_election_timeout(self) -> None:
        et = self.election_timeout
        self.randomized_election_timeout = et + self._rand.randrange(et)

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.past_election_timeout():
            self.election_elapsed = 0
            self.step(Message(MT.HUP, frm=self.id))

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self.election_elapsed = 0
            if self.check_quorum:
                self.step(Message(MT.CHECK_QUORUM, frm=self.id))
            if self.state == StateType.LEADER and self.lead_transferee != NONE:
                self._abort_leader_transfer()
        if self.state != StateType.LEADER:
            return
        if self.heartbeat_elapsed >= self.heartbeat_timeout:
            self.heartbeat_elapsed = 0
            self.step(Message(MT.BEAT, frm=self.id))

    # -- role changes ------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self._reset_randomized_election_timeout()
        self._abort_leader_transfer()
        self.prs.reset_votes()
        next_index = self.raft_log.last_index() + 1
        for node_id, pr in self.prs.progress.items():
            pr.reset(next_index)
            if node_id == self.id:
                pr.match = self._stable_last_index()
        self.pending_conf_index = 0
        self.broadcast_commit_at = 0
        self.uncommitted_size = 0
        self.pending_read_index_messages = []
        self.read_only.reset()

    def become_follower(self, term: int, lead: int) -> None:
        self._step = self._step_follower
        self._reset(term)
        self._tick = self._tick_election
        self.lead = lead
        self.state = StateType.FOLLOWER

    def become_candidate(self) -> None:
        if self.state == StateType.LEADER:
            raise AssertionError("invalid transition [leader -> candidate]")
        self._step = self._step_candidate
        self._reset(self.term + 1)
        self._tick = self._tick_election
        self.vote = self.id
        self.state = StateType.CANDIDATE

    def become_pre_candidate(self) -> None:
        """Like a candidate, but neither the term nor the vote change (§9.6)."""
        if self.state == StateType.LEADER:
            raise AssertionError("invalid transition [leader -> pre-candidate]")
        self._step = self._step_candidate
        self.prs.reset_votes()
        self._tick = self._tick_election
        self.lead = NONE
        self.state = StateType.PRE_CANDIDATE

    def become_leader(self) -> None:
        if self.state == StateType.FOLLOWER:
            raise AssertionError("invalid transition [follower -> leader]")
        self._step = self._step_leader
        self._reset(self.term)
        self._tick = self._tick_heartbeat
        self.lead = self.id
        self.state = StateType.LEADER
        self.prs.progress[self.id].become_replicate()
        # Conf changes in the uncommitted tail may still be pending: block new
        # ones until everything up to here is applied.
        self.pending_conf_index = self.raft_log.last_index()
        # An entry of the new term lets the leader commit what earlier terms
        # left (§5.4.2) and learn the commit index for reads (§6.4).
        self._append_entries([Entry(0, 0)])

    # -- the log -----------------------------------------------------------------

    def _append_entries(self, ents: list[Entry]) -> None:
        li = self.raft_log.last_index()
        term = self.term
        self.raft_log.append([Entry(term, li + 1 + i, e.type, e.data) for i, e in enumerate(ents)])

    def _stable_last_index(self) -> int:
        """Last index known persisted: what this node may count for itself."""
        unstable = self.raft_log.unstable
        if unstable.snapshot is not None:
            return 0
        return unstable.offset - 1

    def reduce_uncommitted_size(self, ents: list[Entry]) -> None:
        """Committed entries no longer count against max_uncommitted_entries_size."""
        if self.uncommitted_size:
            size = sum(len(e.data) for e in ents)
            self.uncommitted_size = max(0, self.uncommitted_size - size)

    def maybe_commit(self) -> bool:
        return self.raft_log.maybe_commit(self.prs.committed(), self.term)

    def on_persisted(self) -> None:
        """The application persisted a Ready: the leader counts its own log now."""
        if self.state != StateType.LEADER:
            return
        pr = self.prs.progress.get(self.id)
        updated = pr is not None and pr.maybe_update(self._stable_last_index())
        if updated and self.maybe_commit():
            self._release_pending_read_index_messages()
            if self._commit_broadcast_due():
                self._bcast_append()

    # -- step: what every role does ----------------------------------------------

    def step(self, m: Message) -> RaftError | None:
        """Take one input; returns the error if it was refused (nothing changed)."""
        if m.term > self.term:
            if not self._step_higher_term(m):
                return None
        elif m.term and m.term < self.term:
            self._step_lower_term(m)
            return None
        t = m.type
        if t == MT.HUP:
            self._hup(Campaign.PRE_ELECTION if self.pre_vote else Campaign.ELECTION)
        elif t == MT.VOTE or t == MT.PRE_VOTE:
            self._handle_vote_request(m)
        else:
            return self._step(m)
        return None

    def _step_higher_term(self, m: Message) -> bool:
        """React to a message of a newer term; False if it must be ignored."""
        if m.type in (MT.VOTE, MT.PRE_VOTE):
            force = m.context == CAMPAIGN_TRANSFER
            in_lease = self.check_quorum and (
                (self.lead != NONE and self.election_elapsed < self.election_timeout)
                or self.votes_held_ticks > 0
            )
            if not force and in_lease:
                # We heard from a leader within the minimum election timeout:
                # do not let a partitioned node disrupt it (§4.2.3).
                return False
        if m.type == MT.PRE_VOTE:
            return True  # a pre-vote never changes our term
        if m.type == MT.PRE_VOTE_RESP and not m.reject:
            return True  # we bump our term when we win the pre-vote
        if m.type in (MT.APP, MT.HEARTBEAT, MT.SNAP):
            self.become_follower(m.term, m.frm)
        else:
            self.become_follower(m.term, NONE)
        return True

    def _step_lower_term(self, m: Message) -> None:
        if (self.check_quorum or self.pre_vote) and m.type in (MT.HEARTBEAT, MT.APP):
            # A stale leader cut off from the cluster: answer so that it
            # learns the new term and steps down, instead of staying leader
            # (with check_quorum, our higher term would otherwise never reach it).
            self._send(Message(MT.APP_RESP, m.frm))
        elif m.type == MT.PRE_VOTE:
            # Reject with our term so a stuck pre-candidate catches up.
            self._send(Message(MT.PRE_VOTE_RESP, m.frm, term=self.term, reject=True))

    def _handle_vote_request(self, m: Message) -> None:
        can_vote = (
            self.vote == m.frm
            or (self.vote == NONE and self.lead == NONE)
            or (m.type == MT.PRE_VOTE and m.term > self.term)
        )
        resp = vote_response_type(m.type)
        if can_vote and self.raft_log.is_up_to_date(m.index, m.log_term):
            # Grant with the request's term: a pre-vote answer must not make
            # the pre-candidate think it is stale.
            self._send(Message(resp, m.frm, term=m.term))
            if m.type == MT.VOTE:
                self.election_elapsed = 0
                self.vote = m.frm
        else:
            self._send(Message(resp, m.frm, term=self.term, reject=True))

    # -- elections ---------------------------------------------------------------

    def _hup(self, kind: Campaign) -> None:
        if self.state == StateType.LEADER or not self.promotable():
            return
        log = self.raft_log
        if log.committed > log.applied:
            pending = log.slice(log.applied + 1, log.committed + 1)
            if any(e.type == EntryType.CONF_CHANGE for e in pending):
                return  # campaign only once the configuration is up to date
        self._campaign(kind)

    def _campaign(self, kind: Campaign) -> None:
        if kind == Campaign.PRE_ELECTION:
            self.become_pre_candidate()
            vote_type, term = MT.PRE_VOTE, self.term + 1
        else:
            self.become_candidate()
            vote_type, term = MT.VOTE, self.term
        if self._poll(self.id, True) == VoteResult.WON:
            # A single voter wins at once.
            if kind == Campaign.PRE_ELECTION:
                self._campaign(Campaign.ELECTION)
            else:
                self.become_leader()
            return
        ctx = CAMPAIGN_TRANSFER if kind == Campaign.TRANSFER else b""
        last, last_term = self.raft_log.last_index(), self.raft_log.last_term()
        for node_id in sorted(self.prs.voters):
            if node_id != self.id:
                self._send(
                    Message(
                        vote_type, node_id, term=term, index=last, log_term=last_term, context=ctx
                    )
                )

    def _poll(self, node_id: int, granted: bool) -> VoteResult:
        self.prs.record_vote(node_id, granted)
        return self.prs.tally_votes()[2]

    # -- candidate ---------------------------------------------------------------

    def _step_candidate(self, m: Message) -> RaftError | None:
        handler = self._candidate_handlers.get(m.type)
        return None if handler is None else handler(m)

    def _candidate_hears_leader(self, m: Message) -> RaftError | None:
        self.become_follower(m.term, m.frm)
        return self._step_follower(m)

    def _candidate_vote_response(self, m: Message) -> None:
        expected = MT.PRE_VOTE_RESP if self.state == StateType.PRE_CANDIDATE else MT.VOTE_RESP
        if m.type != expected:
            return
        result = self._poll(m.frm, not m.reject)
        if result == VoteResult.WON:
            if self.state == StateType.PRE_CANDIDATE:
                self._campaign(Campaign.ELECTION)
            else:
                self.become_leader()
                self._bcast_append()
        elif result == VoteResult.LOST:
            # A pre-candidate that lost returns to its own term; a candidate
            # stays in the term it started.
            self.become_follower(self.term, NONE)

    def _drop_proposal(self, m: Message) -> RaftError:
        return ProposalDropped(f"{self.id} is a {self.state.name.lower()}: no leader to propose to")

    # -- follower ----------------------------------------------------------------

    def _step_follower(self, m: Message) -> RaftError | None:
        handler = self._follower_handlers.get(m.type)
        return None if handler is None else handler(m)

    def _follower_propose(self, m: Message) -> RaftError | None:
        if self.lead == NONE:
            return ProposalDropped(f"{self.id} knows no leader at term {self.term}")
        if self.disable_proposal_forwarding:
            return ProposalDropped(f"{self.id} is not the leader and does not forward")
        self._forward_to_leader(m)
        return None

    def _forward_to_leader(self, m: Message) -> None:
        """Send a copy of `m` to the leader (the caller's message stays as it was)."""
        if self.lead != NONE:
            self._send(replace(m, to=self.lead))

    def _follower_hears_leader(self, m: Message) -> None:
        self.election_elapsed = 0
        self.lead = m.frm
        if m.type == MT.APP:
            self._handle_append_entries(m)
        elif m.type == MT.HEARTBEAT:
            self.raft_log.commit_to(m.commit)
            self._send(Message(MT.HEARTBEAT_RESP, m.frm, context=m.context))
        else:
            self._handle_snapshot(m)

    def _follower_read_index_response(self, m: Message) -> None:
        self.read_states.append(ReadState(m.index, m.context))

    def _handle_append_entries(self, m: Message) -> None:
        log = self.raft_log
        if m.index < log.committed:
            self._send(Message(MT.APP_RESP, m.frm, index=log.committed))
            return
        last = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last is not None:
            self._send(Message(MT.APP_RESP, m.frm, index=last))
            return
        # Tell the leader the last index at or below m.index whose term is at
        # most m.log_term: everything after it certainly differs (§5.3).
        hint, hint_term = log.find_conflict_by_term(min(m.index, log.last_index()), m.log_term)
        self._send(
            Message(
                MT.APP_RESP, m.frm, index=m.index, reject=True, reject_hint=hint, log_term=hint_term
            )
        )

    def _handle_snapshot(self, m: Message) -> None:
        assert m.snapshot is not None
        if self.restore(m.snapshot):
            self._send(Message(MT.APP_RESP, m.frm, index=self.raft_log.last_index()))
        else:
            self._send(Message(MT.APP_RESP, m.frm, index=self.raft_log.committed))

    def restore(self, snap: Snapshot) -> bool:
        """Adopt `snap` as the log's new base; False if it brings nothing new."""
        meta = snap.metadata
        if meta.index <= self.raft_log.committed:
            return False
        cs = meta.conf_state
        if self.id not in cs.voters and self.id not in cs.learners:
            return False  # a snapshot for a configuration we are not part of
        if self.raft_log.match_term(meta.index, meta.term):
            # We have the entry already: just commit up to it.
            self.raft_log.commit_to(meta.index)
            return False
        self.raft_log.restore(snap)
        self.prs = ProgressTracker(self.prs.max_inflight)
        self._apply_conf_state(cs)
        return True

    # -- leader ------------------------------------------------------------------

    def _step_leader(self, m: Message) -> RaftError | None:
        handler = self._leader_handlers.get(m.type)
        return None if handler is None else handler(m)

    def _leader_check_quorum(self, m: Message) -> None:
        own = self.prs.progress.get(self.id)
        if own is not None:
            own.recent_active = True
        if not self.prs.quorum_active():
            self.become_follower(self.term, NONE)
        for node_id, pr in self.prs.progress.items():
            if node_id != self.id:
                pr.recent_active = False

    def _leader_propose(self, m: Message) -> RaftError | None:
        if not m.entries:
            raise ValueError("proposal with no entries")
        if self.id not in self.prs.progress:
            return ProposalDropped(f"{self.id} was removed from the configuration")
        if self.lead_transferee != NONE:
            return ProposalDropped(f"leadership is being transferred to {self.lead_transferee}")
        ents = list(m.entries)
        size = sum(len(e.data) for e in ents)
        if self.uncommitted_size and self.uncommitted_size + size > self.max_uncommitted_size:
            return ProposalDropped(
                f"{self.uncommitted_size} bytes are waiting to commit (limit "
                f"{self.max_uncommitted_size})"
            )
        self.uncommitted_size += size
        for i, e in enumerate(ents):
            if e.type == EntryType.CONF_CHANGE:
                if self.pending_conf_index > self.raft_log.applied:
                    # One change at a time: a second one becomes a no-op.
                    ents[i] = Entry(0, 0)
                else:
                    self.pending_conf_index = self.raft_log.last_index() + i + 1
        self._append_entries(ents)
        self._bcast_append()
        return None

    def _leader_read_index(self, m: Message) -> None:
        if self.prs.is_singleton():
            self._respond_to_read_index(m, self.raft_log.committed)
            return
        if not self.committed_entry_in_current_term():
            # Our commit index may still be behind the previous leader's:
            # answer once the empty entry of this term is committed.
            self.pending_read_index_messages.append(m)
            return
        self._send_read_index_response(m)

    def _send_read_index_response(self, m: Message) -> None:
        if self.read_only.option == ReadOnlyOption.SAFE:
            self.read_only.add_request(self.raft_log.committed, m)
            self.read_only.recv_ack(self.id, m.context)
            self._bcast_heartbeat(m.context)
        else:
            self._respond_to_read_index(m, self.raft_log.committed)

    def _respond_to_read_index(self, req: Message, index: int) -> None:
        if req.frm in (NONE, self.id):
            self.read_states.append(ReadState(index, req.context))
        else:
            self._send(Message(MT.READ_INDEX_RESP, req.frm, index=index, context=req.context))

    def _release_pending_read_index_messages(self) -> None:
        if not self.pending_read_index_messages or not self.committed_entry_in_current_term():
            return
        pending, self.pending_read_index_messages = self.pending_read_index_messages, []
        for m in pending:
            self._send_read_index_response(m)

    def _leader_append_response(self, m: Message) -> None:
        pr = self.prs.progress.get(m.frm)
        if pr is None:
            return
        pr.recent_active = True
        if m.reject:
            self._append_rejected(m, pr)
            return
        old_paused = pr.is_paused()
        if not pr.maybe_update(m.index):
            return
        self._progress_after_ack(pr, m.index)
        if self.maybe_commit():
            self._release_pending_read_index_messages()
            if self._commit_broadcast_due():
                self._bcast_append()
        elif old_paused and self.eager_commit:
            # It may have missed the latest commit index.
            self._send_append(m.frm)
        while self._maybe_send_append(m.frm, send_if_empty=False):
            pass
        if m.frm == self.lead_transferee and pr.match == self.raft_log.last_index():
            self._send(Message(MT.TIMEOUT_NOW, m.frm))

    def _append_rejected(self, m: Message, pr: Progress) -> None:
        """A follower's log differs before m.index: probe from its hint (§5.3,
        with the term of the hint to skip a whole term's entries at once)."""
        probe = m.reject_hint
        if m.log_term > 0:
            probe = self.raft_log.find_conflict_by_term(m.reject_hint, m.log_term)[0]
        if pr.maybe_decr_to(m.index, probe):
            if pr.state == ProgressState.REPLICATE:
                pr.become_probe()
            self._send_append(m.frm)

    @staticmethod
    def _progress_after_ack(pr: Progress, index: int) -> None:
        """A follower acknowledged entries up to `index`: it replicates now."""
        if pr.state == ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state == ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot:
            pr.become_probe()
            pr.become_replicate()
        elif pr.state == ProgressState.REPLICATE:
            pr.inflights.free_le(index)

    def _leader_heartbeat_response(self, m: Message) -> None:
        pr = self.prs.progress.get(m.frm)
        if pr is None:
            return
        pr.recent_active = True
        pr.probe_sent = False
        if pr.state == ProgressState.REPLICATE and pr.inflights.full():
            # An append may have been lost: let one more through.
            pr.inflights.free_first_one()
        if pr.match < self.raft_log.last_index():
            self._send_append(m.frm)
        if self.read_only.option != ReadOnlyOption.SAFE or not m.context:
            return
        acks = self.read_only.recv_ack(m.frm, m.context)
        if acks is None:
            return
        if vote_result(self.prs.voters, dict.fromkeys(acks, True)) != VoteResult.WON:
            return
        for rs in self.read_only.advance(m.context):
            self._respond_to_read_index(rs.req, rs.index)

    def _leader_snap_status(self, m: Message) -> None:
        pr = self.prs.progress.get(m.frm)
        if pr is None or pr.state != ProgressState.SNAPSHOT:
            return
        if m.reject:
            pr.pending_snapshot = 0
        pr.become_probe()
        # Wait for the follower's answer (or a heartbeat) before the next append.
        pr.probe_sent = True

    def _leader_unreachable(self, m: Message) -> None:
        pr = self.prs.progress.get(m.frm)
        if pr is not None and pr.state == ProgressState.REPLICATE:
            pr.become_probe()

    def _leader_transfer(self, m: Message) -> None:
        transferee = m.frm
        pr = self.prs.progress.get(transferee)
        if pr is None or pr.is_learner:
            return
        if self.lead_transferee != NONE:
            if self.lead_transferee == transferee:
                return
            self._abort_leader_transfer()
        if transferee == self.id:
            return
        # The transfer must finish within one election timeout.
        self.election_elapsed = 0
        self.lead_transferee = transferee
        if pr.match == self.raft_log.last_index():
            self._send(Message(MT.TIMEOUT_NOW, transferee))
        else:
            self._send_append(transferee)

    def _abort_leader_transfer(self) -> None:
        self.lead_transferee = NONE

    # -- membership --------------------------------------------------------------

    def _apply_conf_state(self, cs: ConfState) -> None:
        next_index = self.raft_log.last_index() + 1
        for v in cs.voters:
            self.prs.add_voter(v, next_index)
        for lrn in cs.learners:
            self.prs.add_learner(lrn, next_index)
        self.is_learner = self.id in self.prs.learners

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """Apply a committed membership change; returns the new configuration."""
        if cc.node_id != NONE:
            next_index = self.raft_log.last_index() + 1
            if cc.type == ConfChangeType.ADD_NODE:
                self.prs.add_voter(cc.node_id, next_index)
            elif cc.type == ConfChangeType.ADD_LEARNER_NODE:
                self.prs.add_learner(cc.node_id, next_index)
            elif cc.type == ConfChangeType.REMOVE_NODE:
                self.prs.remove(cc.node_id)
            self._switch_to_config()
        return self.prs.conf_state()

    def _switch_to_config(self) -> None:
        pr = self.prs.progress.get(self.id)
        self.is_learner = pr is not None and pr.is_learner
        if self.state != StateType.LEADER:
            return
        if pr is None or self.is_learner:
            # Removed or demoted: a leader that is not a voter steps down.
            self.become_follower(self.term, NONE)
            return
        if self.lead_transferee != NONE and self.lead_transferee not in self.prs.voters:
            self._abort_leader_transfer()
        # Fewer voters may mean a smaller quorum, and so a higher commit index.
        if self.maybe_commit():
            self._release_pending_read_index_messages()
            self._bcast_append()
        else:
            for node_id in sorted(self.prs.progress):
                if node_id != self.id:
                    self._maybe_send_append(node_id, send_if_empty=False)


__all__ = ["CAMPAIGN_TRANSFER", "Campaign", "Raft"]
