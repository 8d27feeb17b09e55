"""Progress: the leader's view of a follower (after etcd-raft's progress_test.go)."""

import pytest

from multiraft.raft.tracker.progress import Progress, ProgressState

PROBE, REPLICATE, SNAPSHOT = ProgressState.PROBE, ProgressState.REPLICATE, ProgressState.SNAPSHOT


def progress(state=PROBE, match=0, next_index=1, pending_snapshot=0, max_inflight=256):
    pr = Progress(next_index, max_inflight)
    pr.state = state
    pr.match = match
    pr.pending_snapshot = pending_snapshot
    return pr


def test_new_progress():
    pr = Progress(5, 10, is_learner=True)
    assert (pr.match, pr.next, pr.state) == (0, 5, PROBE)
    assert (pr.pending_snapshot, pr.recent_active, pr.probe_sent) == (0, False, False)
    assert pr.is_learner
    assert pr.inflights.size == 10


@pytest.mark.parametrize(
    "state, probe_sent, want",
    [
        (PROBE, False, False),
        (PROBE, True, True),
        (REPLICATE, False, False),
        (REPLICATE, True, False),  # probe_sent does not matter when replicating
        (SNAPSHOT, False, True),
        (SNAPSHOT, True, True),
    ],
)
def test_is_paused(state, probe_sent, want):
    pr = progress(state)
    pr.probe_sent = probe_sent
    assert pr.is_paused() is want


def test_replicate_paused_when_inflights_full():
    pr = progress(REPLICATE, max_inflight=2)
    pr.inflights.add(1)
    assert not pr.is_paused()
    pr.inflights.add(2)
    assert pr.is_paused()
    pr.inflights.free_le(1)
    assert not pr.is_paused()


def test_resume():
    # maybe_decr_to and maybe_update both let a paused probe send again.
    pr = progress(next_index=2)
    pr.probe_sent = True
    assert pr.maybe_decr_to(1, 1)
    assert not pr.probe_sent
    pr.probe_sent = True
    assert pr.maybe_update(2)
    assert not pr.probe_sent


@pytest.mark.parametrize(
    "state, pending, wnext",
    [
        (REPLICATE, 0, 2),
        (SNAPSHOT, 10, 11),  # snapshot finished: probe right after it
        (SNAPSHOT, 0, 2),  # snapshot failed
        (PROBE, 0, 2),
    ],
)
def test_become_probe(state, pending, wnext):
    pr = progress(state, match=1, next_index=5, pending_snapshot=pending)
    pr.probe_sent = True
    pr.inflights.add(4)
    pr.become_probe()
    assert (pr.state, pr.match, pr.next) == (PROBE, 1, wnext)
    assert (pr.pending_snapshot, pr.probe_sent, pr.inflights.count()) == (0, False, 0)


def test_become_probe_after_snapshot_behind_match():
    pr = progress(SNAPSHOT, match=20, next_index=21, pending_snapshot=10)
    pr.become_probe()
    assert pr.next == 21


def test_become_replicate():
    pr = progress(PROBE, match=1, next_index=5)
    pr.probe_sent = True
    pr.become_replicate()
    assert (pr.state, pr.match, pr.next, pr.probe_sent) == (REPLICATE, 1, 2, False)


def test_become_snapshot():
    pr = progress(REPLICATE, match=1, next_index=5)
    pr.inflights.add(4)
    pr.become_snapshot(10)
    assert (pr.state, pr.match, pr.next, pr.pending_snapshot) == (SNAPSHOT, 1, 5, 10)
    assert pr.inflights.count() == 0


PREV_M, PREV_N = 3, 5


@pytest.mark.parametrize(
    "update, wm, wn, wok",
    [
        (PREV_M - 1, PREV_M, PREV_N, False),  # do not decrease match, next
        (PREV_M, PREV_M, PREV_N, False),  # do not decrease next
        (PREV_M + 1, PREV_M + 1, PREV_N, True),  # increase match, do not decrease next
        (PREV_M + 2, PREV_M + 2, PREV_N + 1, True),  # increase match, next
    ],
)
def test_maybe_update(update, wm, wn, wok):
    pr = progress(match=PREV_M, next_index=PREV_N)
    assert pr.maybe_update(update) is wok
    assert (pr.match, pr.next) == (wm, wn)


def test_maybe_update_stale_keeps_probe_sent():
    pr = progress(match=3, next_index=5)
    pr.probe_sent = True
    assert not pr.maybe_update(2)
    assert pr.probe_sent


def test_optimistic_update():
    pr = progress(REPLICATE, match=3, next_index=5)
    pr.optimistic_update(9)
    assert (pr.match, pr.next) == (3, 10)


@pytest.mark.parametrize(
    "state, m, n, rejected, hint, wok, wn",
    [
        # replicate, rejected not greater than match: stale
        (REPLICATE, 5, 10, 5, 5, False, 10),
        (REPLICATE, 5, 10, 4, 4, False, 10),
        # replicate, rejected greater than match: straight back to match+1
        (REPLICATE, 5, 10, 9, 9, True, 6),
        # probe: next-1 != rejected means stale
        (PROBE, 0, 0, 0, 0, False, 0),
        (PROBE, 0, 10, 5, 5, False, 10),
        # next > 1: decremented by 1
        (PROBE, 0, 10, 9, 9, True, 9),
        (PROBE, 0, 2, 1, 1, True, 1),
        # next <= 1: reset to 1
        (PROBE, 0, 1, 0, 0, True, 1),
        # decrease to min(rejected, hint+1)
        (PROBE, 0, 10, 9, 2, True, 3),
        # hint 0: down to 1
        (PROBE, 0, 10, 9, 0, True, 1),
        # never below match+1
        (PROBE, 3, 10, 9, 1, True, 4),
    ],
)
def test_maybe_decr_to(state, m, n, rejected, hint, wok, wn):
    pr = progress(state, match=m, next_index=n)
    pr.probe_sent = True
    assert pr.maybe_decr_to(rejected, hint) is wok
    assert pr.next == wn
    assert pr.match == m
    if state == PROBE:
        assert pr.probe_sent is not wok  # a useful rejection lets the probe go again


def test_snapshot_state_ignores_decrement_unless_it_matches_next():
    pr = progress(SNAPSHOT, match=2, next_index=5, pending_snapshot=10)
    assert not pr.maybe_decr_to(3, 3)
    assert pr.next == 5


def test_repr():
    pr = progress(REPLICATE, match=2, next_index=3)
    assert repr(pr) == "Progress(match=2, next=3, state=REPLICATE, inflight=0, learner=False)"


def test_reset_forgets_everything_but_identity():
    pr = progress(SNAPSHOT, match=4, next_index=9, pending_snapshot=7, max_inflight=3)
    pr.is_learner = True
    pr.recent_active = True
    pr.probe_sent = True
    pr.inflights.add(5)
    inflights = pr.inflights
    pr.reset(12)
    assert (pr.match, pr.next, pr.state, pr.pending_snapshot) == (0, 12, PROBE, 0)
    assert (pr.recent_active, pr.probe_sent) == (False, False)
    assert pr.inflights is inflights and inflights.count() == 0 and inflights.size == 3
    assert pr.is_learner
