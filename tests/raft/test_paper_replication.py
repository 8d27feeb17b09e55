"""Log replication, §5.3 of the Raft paper: appending, the consistency check,
backtracking over conflicting follower logs (Figure 7) and the commit rules."""

from __future__ import annotations

import pytest

from multiraft.raft import Entry, MemoryStorage, Message, StateType
from multiraft.raft import MessageType as MT
from tests.raft.network import Network, storage_with_log


def is_type(t: MT, frm: int | None = None, to: int | None = None):
    return lambda m: m.type == t and frm in (None, m.frm) and to in (None, m.to)


def log_terms(net: Network, node_id: int) -> list[tuple[int, int]]:
    return [(e.index, e.term) for e in net.raw(node_id).raft.raft_log.all_entries()]


def test_leader_appends_proposal_and_sends_it_to_every_follower() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    assert net.propose(1, b"x")
    net.process_readies()
    entry = Entry(1, 2, data=b"x")
    assert net.nodes[1].storage.entries(2, 3, 1 << 20) == [entry], "persisted before sending"
    apps = net.take(is_type(MT.APP))
    assert sorted(m.to for m in apps) == [2, 3]
    for m in apps:
        assert (m.term, m.index, m.log_term, m.commit) == (1, 1, 1, 1)
        assert m.entries == [entry]
    assert net.raw(1).raft.raft_log.committed == 1, "not committed before any follower acked"


def test_committed_entry_reaches_every_state_machine() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    assert net.propose(1, b"x")
    net.stabilize()
    for i in (1, 2, 3):
        assert net.raw(i).raft.raft_log.committed == 2
        assert net.applied(i) == [b"x"]
        assert net.nodes[i].storage.hard_state.commit == 2


@pytest.mark.parametrize(
    ("size", "ackers", "committed"),
    [
        (1, [], True),
        (3, [], False),
        (3, [2], True),
        (3, [2, 3], True),
        (5, [2], False),
        (5, [2, 3], True),
        (5, [2, 3, 4, 5], True),
    ],
)
def test_leader_commits_once_a_majority_has_the_entry(
    size: int, ackers: list[int], committed: bool
) -> None:
    net = Network(range(1, size + 1))
    net.elect(1)
    assert net.propose(1, b"x")
    net.process_readies()  # the leader persists its own copy
    net.take()
    for f in ackers:
        net.deliver(Message(MT.APP_RESP, to=1, frm=f, term=1, index=2))
    net.process_readies()
    assert net.raw(1).raft.raft_log.committed == (2 if committed else 1)


def test_leader_counts_its_own_entry_only_once_persisted() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    raw = net.raw(1)
    raw.propose(b"x")
    rd = raw.ready()
    assert [e.data for e in rd.entries] == [b"x"] and rd.must_sync
    raw.step(Message(MT.APP_RESP, to=1, frm=2, term=1, index=2))
    assert raw.raft.raft_log.committed == 1, "one follower plus an unpersisted leader copy"
    net.nodes[1].storage.append(rd.entries)
    raw.advance(rd)
    assert raw.raft.raft_log.committed == 2


def test_single_node_commits_its_proposal_in_the_ready_after_persisting_it() -> None:
    net = Network((1,))
    net.elect(1)
    raw = net.raw(1)
    raw.propose(b"x")
    rd = raw.ready()
    assert [e.data for e in rd.entries] == [b"x"]
    assert rd.committed_entries == []
    net.nodes[1].storage.append(rd.entries)
    raw.advance(rd)
    assert raw.has_ready()
    rd = raw.ready()
    assert [e.data for e in rd.committed_entries] == [b"x"]
    assert rd.hard_state.commit == 2


def test_follower_commits_up_to_leader_commit_but_not_past_what_it_was_sent() -> None:
    net = Network((1, 2, 3))
    ents = [Entry(1, 1, data=b"a"), Entry(1, 2, data=b"b")]
    net.deliver(Message(MT.APP, to=1, frm=2, term=1, index=0, log_term=0, entries=ents, commit=5))
    r = net.raw(1).raft
    assert r.raft_log.committed == 2
    net.deliver(Message(MT.APP, to=1, frm=2, term=1, index=2, log_term=1, commit=1))
    assert r.raft_log.committed == 2, "the commit index never goes back"
    net.process_readies()
    assert net.applied(1) == [b"a", b"b"]


@pytest.mark.parametrize(
    ("index", "log_term", "reject", "resp_index", "hint", "hint_term"),
    [
        (0, 0, False, 1, 0, 0),  # before the commit index: answer with the commit index
        (1, 1, False, 1, 0, 0),
        (2, 2, False, 2, 0, 0),
        (1, 2, True, 1, 1, 1),  # term mismatch at 1
        (2, 1, True, 2, 1, 1),  # term mismatch at 2: entry 2 has term 2 > 1
        (3, 3, True, 3, 2, 2),  # beyond our log
        (5, 1, True, 5, 1, 1),
    ],
)
def test_follower_consistency_check_and_reject_hint(
    index: int, log_term: int, reject: bool, resp_index: int, hint: int, hint_term: int
) -> None:
    storage = storage_with_log((1, 2, 3), [1, 2], commit=1)
    net = Network((1, 2, 3), storages={1: storage})
    net.deliver(Message(MT.APP, to=1, frm=2, term=2, index=index, log_term=log_term, commit=1))
    net.process_readies()
    (resp,) = net.take(is_type(MT.APP_RESP))
    assert (resp.reject, resp.index) == (reject, resp_index)
    if reject:
        assert (resp.reject_hint, resp.log_term) == (hint, hint_term)


@pytest.mark.parametrize(
    ("index", "log_term", "ents", "expected"),
    [
        (2, 2, [(3, 3)], [1, 2, 3]),
        (1, 1, [(2, 3), (3, 4)], [1, 3, 4]),
        (0, 0, [(1, 1)], [1, 2]),  # already there: nothing is truncated
        (0, 0, [(1, 3)], [3]),
    ],
)
def test_follower_deletes_conflicting_suffix_and_appends(
    index: int, log_term: int, ents: list[tuple[int, int]], expected: list[int]
) -> None:
    net = Network((1, 2, 3), storages={1: storage_with_log((1, 2, 3), [1, 2])})
    entries = [Entry(t, i, data=b"t%d-i%d" % (t, i)) for i, t in ents]
    net.deliver(
        Message(MT.APP, to=1, frm=2, term=4, index=index, log_term=log_term, entries=entries)
    )
    net.process_readies()
    assert [t for _, t in log_terms(net, 1)] == expected
    stored = net.nodes[1].storage
    assert [e.term for e in stored.entries(1, stored.last_index() + 1, 1 << 20)] == expected


LEADER_LOG = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIGURE_7 = {
    "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
    "b": [1, 1, 1, 4],
    "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    "e": [1, 1, 1, 4, 4, 4, 4],
    "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    "empty": [],
}


@pytest.mark.parametrize("follower_log", FIGURE_7.values(), ids=FIGURE_7.keys())
def test_leader_brings_any_figure_7_follower_log_in_line(follower_log: list[int]) -> None:
    """The leader of term 8 (re-elected in term 9, with node 3's vote) makes the
    follower's log identical to its own, quickly thanks to the reject hints."""
    voters = (1, 2, 3)
    net = Network(
        voters,
        storages={
            1: storage_with_log(voters, LEADER_LOG, term=8, commit=len(LEADER_LOG)),
            2: storage_with_log(voters, follower_log, term=7),
            3: storage_with_log(voters, [], term=7),
        },
    )
    net.elect(1)
    assert net.term(1) == 9
    net.tick_all(2)
    assert log_terms(net, 2) == log_terms(net, 1)
    assert [e.data for e in net.raw(2).raft.raft_log.all_entries()] == [
        e.data for e in net.raw(1).raft.raft_log.all_entries()
    ]
    assert net.raw(2).raft.raft_log.committed == len(LEADER_LOG) + 1
    rejects = [m for m in net.sent if m.type == MT.APP_RESP and m.frm == 2 and m.reject]
    assert len(rejects) <= 2, f"slow backtracking: {[(m.index, m.reject_hint) for m in rejects]}"


def test_leader_commits_entries_of_earlier_terms_with_its_first_entry() -> None:
    voters = (1, 2, 3)
    storages = {i: storage_with_log(voters, [1, 2], term=2) for i in voters}
    net = Network(voters, storages=storages)
    net.elect(1)
    for i in voters:
        assert net.raw(i).raft.raft_log.committed == 3
        assert net.applied(i) == [b"t1-i1", b"t2-i2"]


def test_heartbeat_never_tells_a_follower_to_commit_past_its_match() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.isolate(3)
    for i in range(3):
        net.propose(1, b"x%d" % i)
    net.stabilize()
    assert net.raw(1).raft.raft_log.committed == 4
    net.heal()
    beats = net.intercept(is_type(MT.HEARTBEAT, to=3))
    net.tick(1)
    (beat,) = beats
    assert beat.commit == net.raw(1).raft.prs.progress[3].match == 1
    net.deliver(beat)
    assert net.raw(3).raft.raft_log.committed <= net.raw(3).raft.raft_log.last_index()


def test_follower_catches_up_after_missing_many_entries() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.crash(3)
    for i in range(50):
        net.propose(1, b"x%d" % i)
    net.stabilize()
    net.restart(3)
    net.tick_all(3)
    assert net.applied(3) == [b"x%d" % i for i in range(50)]
    assert log_terms(net, 3) == log_terms(net, 1)
    assert net.state(1) == StateType.LEADER


def test_empty_storage_is_a_valid_follower() -> None:
    net = Network((1, 2))
    net.add_node(3, MemoryStorage())
    assert net.raw(3).raft.prs.voters == set()
