"""Peer: one replica of one region on this store.

It owns the region's RawNode and PeerStorage, the client commands waiting
to be proposed this turn, the proposals waiting to be applied (matched by
(index, term), as TiKV does), and the reads waiting for a ReadIndex. It
answers nobody itself: it hands the waiting handles to the capability
that answers them.
"""

from __future__ import annotations

from collections import deque

from ..protocol.region import Region
from ..raft import BasicStatus, ConfChange, Config, RaftError, RawNode, StateType
from ..storage.peer_storage import PeerStorage
from .commands import ReadOp, WriteCommand
from .config import RaftSettings
from .lease import Lease
from .outbox import Handle
from .session import SessionTable
from .split_check import RegionSize

Reads = list[tuple[ReadOp, Handle]]
ReadWait = tuple[int, float, Reads]
"""(term, time) a ReadIndex was issued at, and the reads it covers."""


class Peer:
    def __init__(
        self,
        store_id: int,
        region: Region,
        storage: PeerStorage,
        sessions: SessionTable,
        settings: RaftSettings,
        lease: Lease,
        hold_votes: bool = False,
    ) -> None:
        """`hold_votes`: the replica was loaded at the store's start, and
        others' leases may count on what it acknowledged before (see
        `lease`)."""
        me = region.peer_on(store_id)
        if me is None:
            raise ValueError(f"store {store_id} holds no replica of region {region.id}")
        self.store_id = store_id
        self.peer_id = me.peer_id
        self.region = region
        self.storage = storage
        self.sessions = sessions
        config = Config(
            id=me.peer_id,
            election_tick=settings.election_tick,
            heartbeat_tick=settings.heartbeat_tick,
            applied=storage.apply_state.applied_index,
            max_inflight_msgs=settings.max_inflight_msgs,
            max_size_per_msg=settings.max_size_per_msg,
            pre_vote=True,
            check_quorum=True,
            # A proposal must land in our own log, or its (index, term) would
            # name someone else's entry: a follower refuses instead of forwarding.
            disable_proposal_forwarding=True,
            # Many regions, one write each per turn: commit indexes and
            # liveness ride on the appends, not on messages of their own.
            broadcast_commit=False,
            beat_idle_followers_only=True,
            hold_votes_on_start=hold_votes,
        )
        self.raw_node = RawNode(config, storage)
        self.applied = storage.apply_state.applied_index
        """The last entry applied here, in memory (the one on disk may lag:
        `apply_buffer`): where reads wait for the state machine."""
        self.soft_state = self.raw_node.basic_status().soft_state
        """Who leads and in what role, as of this replica's last Ready: one
        turn stale at most, which is safe (a proposal or read on a deposed
        leader is refused by Raft, or by its Ready's change of role)."""
        self.writes: list[tuple[WriteCommand, Handle]] = []
        """Accepted, proposed together at the end of this turn or, while an
        entry of the leader's is in flight, of a later one (`write.due`)."""
        self.write_bytes = 0
        """Keys and values of `writes`, summed."""
        self.reads: Reads = []
        """Accepted this turn: at its end served under the lease, or covered
        by one ReadIndex."""
        self.proposals: deque[tuple[int, int, list[Handle]]] = deque()
        """(index, term, handles) of proposed entries not yet applied."""
        self.read_waits: dict[bytes, ReadWait] = {}
        """Reads waiting for their ReadIndex, by request context."""
        self.ready_reads: deque[tuple[int, Reads]] = deque()
        """Reads with a read index, served once applied reaches it."""
        self.read_seq = 0
        self.lease = lease
        self.size = RegionSize()
        self.frozen = False
        """A snapshot's data is going in: no ticks, messages or Ready."""
        self.quiet = False
        """Not ticked: the region had nothing to do (see `operation.quiesce`)."""
        self.quiescing = False
        """Idle long enough: its next heartbeats tell the followers to go quiet."""
        self.idle_ticks = 0
        self.gossip_due = True
        """Its descriptor or leadership changed since it was last gossiped."""
        self.leader_lost = 0
        """The Raft id of a leader whose store fell silent (0: none): not
        named to clients, who would wait on a dead store, until it is back."""
        self.heard_from: dict[int, int] = {}
        """peer id -> store id of peers that sent this replica messages but
        are not in its descriptor: a replica that missed membership changes
        can still answer the leader that adds it back, or a new peer's vote
        request (TiKV's peer cache)."""

    @property
    def region(self) -> Region:
        return self._region

    @region.setter
    def region(self, region: Region) -> None:
        self._region = region
        self._region_wire = region.to_wire()
        self._stores = {p.peer_id: p.store_id for p in region.peers}
        self.gossip_due = True

    def region_wire(self) -> list[object]:
        """The descriptor's wire form, cached: it rides on every Raft message."""
        return self._region_wire

    # -- who leads ---------------------------------------------------------

    def status(self) -> BasicStatus:
        return self.raw_node.basic_status()

    def is_leader(self) -> bool:
        return self.soft_state.raft_state == StateType.LEADER

    def leader_store(self) -> int | None:
        """The leader's store as this replica knows it, unless that store
        fell silent (`leader_lost`)."""
        lead = self.soft_state.lead
        return self._stores.get(lead) if lead and lead != self.leader_lost else None

    def has_replica_on(self, store_id: int) -> bool:
        return store_id in self._stores.values()

    def store_of_peer(self, peer_id: int) -> int | None:
        store = self._stores.get(peer_id)
        return store if store is not None else self.heard_from.get(peer_id)

    def heard(self, peer_id: int, store_id: int) -> None:
        """A message from `peer_id` came from `store_id`."""
        if peer_id not in self._stores:
            self.heard_from[peer_id] = store_id

    # -- proposals ---------------------------------------------------------

    def propose(self, data: bytes | ConfChange, handles: list[Handle]) -> RaftError | None:
        """Propose an entry whose results answer `handles`; the refusal, if
        Raft would not take it (then nobody waits on it)."""
        if isinstance(data, ConfChange):
            dropped = self.raw_node.propose_conf_change(data)
        else:
            dropped = self.raw_node.propose(data)
        if dropped is None:
            st = self.raw_node.basic_status()
            self.proposals.append((st.last_index, st.hard_state.term, handles))
        return dropped

    def transfer_leader(self, to_peer: int) -> None:
        """Hand leadership to `to_peer`; the lease ends with the attempt. Only
        on the leader itself: a follower would forward it, and the leader
        would start a transfer without ending its lease."""
        st = self.raw_node.basic_status()
        if st.is_leader:
            self.lease.end_term(st.hard_state.term)
            self.raw_node.transfer_leader(to_peer)

    def take_proposal(self, index: int, term: int) -> tuple[list[Handle] | None, list[Handle]]:
        """The handles waiting on entry (index, term) if it is ours, and those
        of proposals that can no longer commit (the log at or before their
        index now holds a newer term's entry)."""
        found = None
        lost: list[Handle] = []
        while self.proposals and self.proposals[0][0] <= index:
            p_index, p_term, handles = self.proposals.popleft()
            if p_index == index and p_term == term:
                found = handles
            else:
                lost.extend(handles)
        if any(p_term < term for _, p_term, _ in self.proposals):
            kept = deque[tuple[int, int, list[Handle]]]()
            for p in self.proposals:
                if p[1] < term:
                    lost.extend(p[2])
                else:
                    kept.append(p)
            self.proposals = kept
        return found, lost

    def forget_proposals_upto(self, index: int) -> None:
        """A snapshot covered these entries without applying them one by one:
        whether ours were among them is unknown, so they get no answer (the
        client retries with the same seq, and the session table answers)."""
        while self.proposals and self.proposals[0][0] <= index:
            self.proposals.popleft()

    def take_waiting(self) -> list[Handle]:
        """Everything that waits on this replica, which is going away."""
        waiting = [h for _, h in self.writes] + [h for _, h in self.reads]
        waiting += [h for _, _, handles in self.proposals for h in handles]
        waiting += [h for _, _, reads in self.read_waits.values() for _, h in reads]
        waiting += [h for _, reads in self.ready_reads for _, h in reads]
        self.writes, self.reads = [], []
        self.write_bytes = 0
        self.proposals.clear()
        self.read_waits.clear()
        self.ready_reads.clear()
        return waiting
