"""Peer: one replica of one region on this store.

It owns the region's RawNode and PeerStorage, the client commands waiting
to be proposed this turn, the proposals waiting to be applied (matched by
(index, term), as TiKV does), and the reads waiting for a ReadIndex.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..protocol.region import Region
from ..raft import ConfChange, Config, RawNode
from ..storage.peer_storage import PeerStorage
from .commands import WriteCommand, encode_writes, err
from .session import SessionTable
from .split_check import RegionSize

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Handle:
    """Where a client's reply goes: its ZeroMQ identity and request id."""

    identity: bytes
    request_id: int
    batched: bool = False
    """Asked in a REQUESTS frame: answered in a REPLIES frame with the other
    answers to the same client that leave at the same point of the turn."""


@dataclass(slots=True)
class ReadOp:
    op: str  # "get" or "scan"
    key: bytes = b""
    end: bytes = b""
    limit: int | None = None
    version: int = 0
    """The region's epoch version when the read was accepted: a split before
    it is served would change the range the client continues from."""


@dataclass(slots=True)
class RaftSettings:
    election_tick: int = 10
    heartbeat_tick: int = 2
    max_inflight_msgs: int = 256
    max_size_per_msg: int = 1 << 20


class Peer:
    def __init__(
        self,
        store_id: int,
        region: Region,
        storage: PeerStorage,
        sessions: SessionTable,
        settings: RaftSettings,
    ) -> None:
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
        )
        self.raw_node = RawNode(config, storage)
        self.writes: list[tuple[WriteCommand, Handle]] = []
        self.reads: list[tuple[ReadOp, Handle]] = []
        self.proposals: deque[tuple[int, int, list[Handle]]] = deque()
        self.read_waits: dict[bytes, list[tuple[ReadOp, Handle]]] = {}
        self.ready_reads: deque[tuple[int, list[tuple[ReadOp, Handle]]]] = deque()
        self._read_seq = 0
        self.size = RegionSize()

    @property
    def region(self) -> Region:
        return self._region

    @region.setter
    def region(self, region: Region) -> None:
        self._region = region
        self._region_wire = region.to_wire()

    def region_wire(self) -> list:
        """The descriptor's wire form, cached: it rides on every Raft message."""
        return self._region_wire

    # -- who leads ---------------------------------------------------------

    def is_leader(self) -> bool:
        return self.raw_node.basic_status().is_leader

    def leader_store(self) -> int | None:
        lead = self.raw_node.basic_status().soft_state.lead
        meta = self.region.peer_by_id(lead) if lead else None
        return meta.store_id if meta else None

    def store_of_peer(self, peer_id: int) -> int | None:
        meta = self.region.peer_by_id(peer_id)
        return meta.store_id if meta else None

    # -- this turn's work --------------------------------------------------

    def propose_pending(self, reply: Any) -> None:
        """Propose this turn's writes as one entry and ask one ReadIndex for
        this turn's reads. `reply(handle, result)` answers refused requests."""
        if self.writes:
            self._propose_writes(reply)
        if self.reads:
            self._read_seq += 1
            ctx = self._read_seq.to_bytes(8, "big")
            self.read_waits[ctx] = self.reads
            self.reads = []
            self.raw_node.read_index(ctx)

    def _propose_writes(self, reply: Any) -> None:
        writes, self.writes = self.writes, []
        self._propose(encode_writes([c for c, _ in writes]), [h for _, h in writes], reply)

    def propose_admin(self, data: bytes, handle: Handle | None, reply: Any) -> None:
        """Propose an admin command (a split) as an entry of its own;
        `handle` is None when the store itself asks (the split checker)."""
        self._propose(data, [handle] if handle else [], reply)

    def propose_conf_change(self, cc: ConfChange, handle: Handle | None, reply: Any) -> None:
        """Propose a membership change (the caller checked none is pending,
        so Raft will not turn it into an empty entry)."""
        self._propose(cc, [handle] if handle else [], reply)

    def _propose(self, data: bytes | ConfChange, handles: list[Handle], reply: Any) -> None:
        if isinstance(data, ConfChange):
            dropped = self.raw_node.propose_conf_change(data)
        else:
            dropped = self.raw_node.propose(data)
        if dropped is not None:
            self._refuse(handles, reply, str(dropped))
            return
        st = self.raw_node.basic_status()
        self.proposals.append((st.last_index, st.hard_state.term, handles))

    def _refuse(self, handles: list[Handle], reply: Any, why: str) -> None:
        detail = {"leader": self.leader_store(), "region": self.region.to_wire()}
        for h in handles:
            reply(h, err("NotLeader", f"region {self.region.id}: {why}", detail))

    def on_leadership_lost(self, reply: Any) -> None:
        """Reads waiting for a quorum check will never get one now."""
        for reads in self.read_waits.values():
            self._refuse([h for _, h in reads], reply, "leadership lost before the read")
        self.read_waits.clear()

    def abandon_requests(self, reply: Any) -> None:
        """The replica is gone: whatever waits on it gets RegionNotFound (a
        proposal in flight may still commit elsewhere, so the client's
        retry goes through its session)."""
        waiting = [h for _, h in self.writes] + [h for _, h in self.reads]
        waiting += [h for _, _, handles in self.proposals for h in handles]
        waiting += [h for reads in self.read_waits.values() for _, h in reads]
        waiting += [h for _, reads in self.ready_reads for _, h in reads]
        self.writes, self.reads = [], []
        self.proposals.clear()
        self.read_waits.clear()
        self.ready_reads.clear()
        for h in waiting:
            reply(h, err("RegionNotFound", f"region {self.region.id} left this store"))

    def forget_proposals_upto(self, index: int) -> None:
        """A snapshot covered these entries without applying them one by one:
        whether ours were among them is unknown, so they get no answer (the
        client retries with the same seq, and the session table answers)."""
        while self.proposals and self.proposals[0][0] <= index:
            self.proposals.popleft()

    def take_proposal(self, index: int, term: int, reply: Any) -> list[Handle] | None:
        """The handles waiting on entry (index, term), if it is ours.

        Proposals of an older term at or after `index` can no longer commit
        (the log at `index` now has a newer term): they are refused.
        """
        found = None
        while self.proposals and self.proposals[0][0] <= index:
            p_index, p_term, handles = self.proposals.popleft()
            if p_index == index and p_term == term:
                found = handles
            else:
                self._refuse(handles, reply, "proposal was overwritten by a new leader")
        stale = [p for p in self.proposals if p[1] < term]
        if stale:
            self.proposals = deque(p for p in self.proposals if p[1] >= term)
            for _, _, handles in stale:
                self._refuse(handles, reply, "proposal was overwritten by a new leader")
        return found
