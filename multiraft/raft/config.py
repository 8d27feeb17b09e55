"""Settings of one Raft node, checked once by `validate()`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .errors import ConfigInvalid
from .types import NO_LIMIT, NONE


class ReadOnlyOption(IntEnum):
    SAFE = 0
    """ReadIndex confirmed by a heartbeat round to a quorum (always linearizable)."""
    LEASE_BASED = 1
    """ReadIndex answered from the leader's lease; relies on bounded clock drift."""


@dataclass(slots=True)
class Config:
    id: int
    election_tick: int = 10
    heartbeat_tick: int = 1
    applied: int = 0
    """The last applied index when (re)starting; entries up to it are not handed out again."""
    max_size_per_msg: int = 1024 * 1024
    max_committed_size_per_ready: int = NO_LIMIT
    max_uncommitted_entries_size: int = NO_LIMIT
    """A leader drops proposals once this many bytes of entry data are
    appended but not yet committed (bounds memory when followers fall behind)."""
    max_inflight_msgs: int = 256
    check_quorum: bool = False
    pre_vote: bool = False
    read_only_option: ReadOnlyOption = ReadOnlyOption.SAFE
    disable_proposal_forwarding: bool = False
    broadcast_commit: bool = True
    """Send every follower an append (empty if need be) as soon as the commit
    index moves, as etcd-raft does. Off, a new commit index rides on the
    next append or heartbeat: a lone write costs each follower one message
    each way instead of two, and followers apply up to a heartbeat later."""
    beat_idle_followers_only: bool = False
    """A heartbeat round skips the followers sent an append since the last
    round (that append already reset their election timer and carried the
    commit index), unless the round confirms a read index."""
    hold_votes_on_start: bool = False
    """With check_quorum: a node grants no (non-forced) vote during its first
    election timeout, as if it had just heard from a leader. A node that
    restarts forgets whom it heard from; without this it could vote at once
    and end a lease that counted on its earlier acknowledgements."""
    seed: int | None = None
    """Seed of the election-timeout RNG; defaults to `id`, so runs are reproducible."""

    def validate(self) -> None:
        if self.id == NONE:
            raise ConfigInvalid("cannot use 0 as id")
        if self.heartbeat_tick <= 0:
            raise ConfigInvalid("heartbeat_tick must be greater than 0")
        if self.election_tick <= self.heartbeat_tick:
            raise ConfigInvalid("election_tick must be greater than heartbeat_tick")
        if self.max_inflight_msgs <= 0:
            raise ConfigInvalid("max_inflight_msgs must be greater than 0")
        if self.max_uncommitted_entries_size <= 0:
            raise ConfigInvalid("max_uncommitted_entries_size must be greater than 0")
        if self.max_size_per_msg <= 0:
            raise ConfigInvalid("max_size_per_msg must be greater than 0")
        if self.read_only_option == ReadOnlyOption.LEASE_BASED and not self.check_quorum:
            raise ConfigInvalid("check_quorum must be enabled for lease-based reads")
