"""Majority quorum math: committed_index and vote_result."""

from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multiraft.raft.tracker.quorum import VoteResult, committed_index, majority, vote_result

PENDING, LOST, WON = VoteResult.PENDING, VoteResult.LOST, VoteResult.WON
INF = 2**63 - 1


@pytest.mark.parametrize("n, q", [(0, 1), (1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)])
def test_majority(n, q):
    assert majority(n) == q


def committed(matches):
    voters = list(range(1, len(matches) + 1))
    return committed_index(voters, lambda v: matches[v - 1])


@pytest.mark.parametrize(
    "matches, want",
    [
        ([5], 5),
        ([0], 0),
        ([5, 3], 3),
        ([3, 5], 3),
        ([5, 3, 1], 3),
        ([1, 5, 5], 5),
        ([0, 0, 7], 0),
        ([5, 4, 3, 2], 3),
        ([2, 2, 9, 9], 2),
        ([9, 8, 7, 6, 5], 7),
        ([5, 6, 7, 8, 9], 7),
        ([1, 2, 3, 4, 5, 6], 3),
        ([10, 10, 10, 0, 0, 0], 0),
        ([10, 10, 10, 10, 0, 0], 10),
        ([1, 2, 3, 4, 5, 6, 7], 4),
        ([7, 7, 7, 0, 0, 0, 0], 0),
        ([7, 7, 7, 7, 0, 0, 0], 7),
    ],
)
def test_committed_index(matches, want):
    assert committed(matches) == want


def test_committed_index_empty_voters_commits_everything():
    assert committed_index(set(), lambda v: 0) == INF


def test_committed_index_only_asks_voters():
    asked = []

    def match_of(v):
        asked.append(v)
        return v * 10

    assert committed_index({1, 2, 3}, match_of) == 20
    assert sorted(asked) == [1, 2, 3]


@pytest.mark.parametrize(
    "n, votes, want",
    [
        (1, {}, PENDING),
        (1, {1: True}, WON),
        (1, {1: False}, LOST),
        (2, {1: True}, PENDING),
        (2, {1: True, 2: True}, WON),
        (2, {1: True, 2: False}, LOST),
        (3, {}, PENDING),
        (3, {1: True}, PENDING),
        (3, {1: True, 2: True}, WON),
        (3, {1: True, 2: False}, PENDING),
        (3, {1: False, 2: False}, LOST),
        (3, {1: True, 2: False, 3: False}, LOST),
        (4, {1: True, 2: True}, PENDING),
        (4, {1: True, 2: True, 3: True}, WON),
        (4, {1: False, 2: False}, LOST),
        (5, {1: True, 2: True, 3: False, 4: False}, PENDING),
        (5, {1: True, 2: True, 3: True, 4: False, 5: False}, WON),
        (6, {1: True, 2: True, 3: True, 4: False}, PENDING),
        (6, {1: False, 2: False, 3: False}, LOST),
        (7, {1: True, 2: True, 3: True, 4: True}, WON),
        (7, {1: False, 2: False, 3: False, 4: False}, LOST),
        # votes of non-voters do not count
        (3, {1: True, 8: True, 9: True}, PENDING),
        (3, {1: False, 8: False, 9: False}, PENDING),
    ],
)
def test_vote_result(n, votes, want):
    assert vote_result(set(range(1, n + 1)), votes) == want


def test_vote_result_empty_voters_wins():
    assert vote_result(set(), {}) == WON
    assert vote_result(set(), {1: False}) == WON


# -- property tests against brute-force definitions ------------------------------


def brute_committed(voters, match):
    """The largest index that every member of some majority has reached."""
    q = len(voters) // 2 + 1
    return max(min(match[v] for v in group) for group in combinations(voters, q))


def brute_vote(voters, votes):
    """WON if some majority all granted; LOST if no majority can still all grant."""
    q = len(voters) // 2 + 1
    groups = list(combinations(voters, q))
    if any(all(votes.get(v) is True for v in g) for g in groups):
        return WON
    if not any(all(votes.get(v) is not False for v in g) for g in groups):
        return LOST
    return PENDING


voter_sets = st.sets(st.integers(1, 20), min_size=1, max_size=7)


@given(
    voter_sets.flatmap(
        lambda vs: st.tuples(
            st.just(sorted(vs)),
            st.fixed_dictionaries({v: st.integers(0, 10) for v in vs}),
        )
    )
)
def test_committed_index_matches_brute_force(args):
    voters, match = args
    assert committed_index(voters, match.__getitem__) == brute_committed(voters, match)


@given(
    voter_sets,
    st.dictionaries(st.integers(1, 25), st.booleans(), max_size=10),
)
def test_vote_result_matches_brute_force(voters, votes):
    voters = sorted(voters)
    assert vote_result(voters, votes) == brute_vote(voters, votes)
