"""The leader's bookkeeping: configuration, per-follower progress, quorums."""

from .inflights import Inflights
from .progress import Progress, ProgressState
from .quorum import VoteResult, committed_index, majority, vote_result
from .tracker import ProgressTracker

__all__ = [
    "Inflights",
    "Progress",
    "ProgressState",
    "ProgressTracker",
    "VoteResult",
    "committed_index",
    "majority",
    "vote_result",
]
