"""ProgressTracker: the configuration (voters, learners), every member's
Progress, and the votes of the current election."""

from __future__ import annotations

from ..types import ConfState
from .progress import Progress
from .quorum import VoteResult, committed_index, vote_result


class ProgressTracker:
    __slots__ = ("learners", "max_inflight", "progress", "voters", "votes")

    def __init__(self, max_inflight: int) -> None:
        self.voters: set[int] = set()
        self.learners: set[int] = set()
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.max_inflight = max_inflight

    def conf_state(self) -> ConfState:
        return ConfState(tuple(sorted(self.voters)), tuple(sorted(self.learners)))

    def is_singleton(self) -> bool:
        return len(self.voters) == 1

    def committed(self) -> int:
        """The largest log index a majority of voters has persisted."""
        prs = self.progress
        return committed_index(self.voters, lambda v: prs[v].match)

    def quorum_active(self) -> bool:
        """Whether a majority of voters was heard from since the last check."""
        prs = self.progress
        votes = {v: prs[v].recent_active for v in self.voters}
        return vote_result(self.voters, votes) == VoteResult.WON

    def visit(self) -> list[tuple[int, Progress]]:
        """(id, progress) of every member, in id order (deterministic sends)."""
        return sorted(self.progress.items())

    # -- elections -------------------------------------------------------------

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, node_id: int, granted: bool) -> None:
        self.votes.setdefault(node_id, granted)

    def tally_votes(self) -> tuple[int, int, VoteResult]:
        granted = sum(1 for v in self.voters if self.votes.get(v) is True)
        rejected = sum(1 for v in self.voters if self.votes.get(v) is False)
        return granted, rejected, vote_result(self.voters, self.votes)

    # -- membership --------------------------------------------------------------

    def add_voter(self, node_id: int, next_index: int) -> None:
        self.learners.discard(node_id)
        self.voters.add(node_id)
        pr = self.progress.get(node_id)
        if pr is None:
            self._add_progress(node_id, next_index, is_learner=False)
        else:
            pr.is_learner = False

    def add_learner(self, node_id: int, next_index: int) -> None:
        """Adds a learner, or demotes a voter to one (as etcd-raft does)."""
        self.voters.discard(node_id)
        self.learners.add(node_id)
        pr = self.progress.get(node_id)
        if pr is None:
            self._add_progress(node_id, next_index, is_learner=True)
        else:
            pr.is_learner = True

    def remove(self, node_id: int) -> None:
        self.voters.discard(node_id)
        self.learners.discard(node_id)
        self.progress.pop(node_id, None)
        self.votes.pop(node_id, None)

    def _add_progress(self, node_id: int, next_index: int, is_learner: bool) -> None:
        pr = Progress(next_index, self.max_inflight, is_learner)
        # A new member counts as active until the next quorum check, so that
        # adding it does not make the leader step down at once.
        pr.recent_active = True
        self.progress[node_id] = pr
