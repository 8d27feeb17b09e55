"""ProgressTracker: membership, progress, votes."""

from multiraft.raft.tracker.progress import ProgressState
from multiraft.raft.tracker.quorum import VoteResult
from multiraft.raft.tracker.tracker import ProgressTracker
from multiraft.raft.types import ConfState


def tracker(voters=(), learners=(), next_index=1, max_inflight=4):
    t = ProgressTracker(max_inflight)
    for v in voters:
        t.add_voter(v, next_index)
    for lrn in learners:
        t.add_learner(lrn, next_index)
    return t


def test_empty():
    t = ProgressTracker(8)
    assert t.conf_state() == ConfState()
    assert not t.is_singleton()
    assert t.visit() == []
    assert t.max_inflight == 8


def test_add_voter_creates_active_probe_progress():
    t = tracker([3, 1, 2], next_index=7, max_inflight=5)
    assert t.conf_state() == ConfState((1, 2, 3), ())
    pr = t.progress[2]
    assert (pr.match, pr.next, pr.state) == (0, 7, ProgressState.PROBE)
    assert pr.recent_active  # new members count as active until the next check
    assert not pr.is_learner
    assert pr.inflights.size == 5


def test_add_voter_twice_keeps_progress():
    t = tracker([1])
    t.progress[1].match = 5
    t.add_voter(1, 100)
    assert (t.progress[1].match, t.progress[1].next) == (5, 1)
    assert t.voters == {1}


def test_add_learner():
    t = tracker([1], [2])
    assert t.conf_state() == ConfState((1,), (2,))
    assert t.progress[2].is_learner
    assert t.progress[2].recent_active


def test_promote_learner_keeps_its_progress():
    t = tracker([1], [2])
    t.progress[2].match = 4
    t.add_voter(2, 100)
    assert t.conf_state() == ConfState((1, 2), ())
    assert not t.progress[2].is_learner
    assert t.progress[2].match == 4


def test_add_learner_demotes_a_voter_keeping_its_progress():
    t = tracker([1, 2])
    t.progress[2].match = 4
    t.add_learner(2, 1)
    assert t.conf_state() == ConfState((1,), (2,))
    assert t.progress[2].is_learner
    assert t.progress[2].match == 4


def test_add_learner_twice_keeps_progress():
    t = tracker([1], [2])
    t.progress[2].match = 3
    t.add_learner(2, 9)
    assert t.progress[2].match == 3


def test_remove():
    t = tracker([1, 2, 3], [4])
    t.record_vote(2, True)
    t.remove(2)
    t.remove(4)
    t.remove(9)  # unknown: no-op
    assert t.conf_state() == ConfState((1, 3), ())
    assert set(t.progress) == {1, 3}
    assert 2 not in t.votes


def test_is_singleton():
    assert tracker([1]).is_singleton()
    assert tracker([1], [2]).is_singleton()  # learners do not count
    assert not tracker([1, 2]).is_singleton()


def test_committed_ignores_learners():
    t = tracker([1, 2, 3], [4, 5])
    for node_id, m in {1: 5, 2: 3, 3: 1, 4: 9, 5: 9}.items():
        t.progress[node_id].match = m
    assert t.committed() == 3


def test_quorum_active():
    t = tracker([1, 2, 3], [4])
    for pr in t.progress.values():
        pr.recent_active = False
    t.progress[4].recent_active = True
    t.progress[1].recent_active = True
    assert not t.quorum_active()
    t.progress[2].recent_active = True
    assert t.quorum_active()


def test_visit_in_id_order():
    t = tracker([3, 1], [2])
    assert [node_id for node_id, _ in t.visit()] == [1, 2, 3]
    assert t.visit()[0][1] is t.progress[1]


def test_votes():
    t = tracker([1, 2, 3, 4, 5], [6])
    t.record_vote(1, True)
    t.record_vote(6, True)  # a learner's vote does not count
    assert t.tally_votes() == (1, 0, VoteResult.PENDING)
    t.record_vote(2, False)
    t.record_vote(2, True)  # only the first vote of a node counts
    assert t.tally_votes() == (1, 1, VoteResult.PENDING)
    t.record_vote(3, False)
    t.record_vote(4, False)
    assert t.tally_votes() == (1, 3, VoteResult.LOST)
    t.reset_votes()
    assert t.tally_votes() == (0, 0, VoteResult.PENDING)
    for v in (1, 2, 3):
        t.record_vote(v, True)
    assert t.tally_votes() == (3, 0, VoteResult.WON)
