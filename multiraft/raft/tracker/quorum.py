"""Majority quorum math for a single (non-joint) voter set."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from enum import IntEnum


class VoteResult(IntEnum):
    PENDING = 0
    LOST = 1
    WON = 2


def majority(n: int) -> int:
    return n // 2 + 1


def committed_index(voters: Collection[int], match_of: Callable[[int], int]) -> int:
    """The largest index acknowledged by a majority of `voters`.

    An empty voter set commits everything (so that a joint state with an
    empty half never blocks): it returns a very large number.
    """
    n = len(voters)
    if n == 0:
        return 2**63 - 1
    matches = sorted((match_of(v) for v in voters), reverse=True)
    return matches[majority(n) - 1]


def vote_result(voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
    """WON once a majority granted, LOST once a majority can no longer grant."""
    if not voters:
        return VoteResult.WON
    granted = rejected = 0
    for v in voters:
        vote = votes.get(v)
        if vote is None:
            continue
        if vote:
            granted += 1
        else:
            rejected += 1
    q = majority(len(voters))
    if granted >= q:
        return VoteResult.WON
    if len(voters) - rejected < q:
        return VoteResult.LOST
    return VoteResult.PENDING
