"""Safety, §5.4 of the Raft paper: leaders commit entries of older terms only
indirectly (Figure 8), leader completeness, and committed entries surviving crashes."""

from __future__ import annotations

from multiraft.raft import Message, StateType
from multiraft.raft import MessageType as MT
from tests.raft.network import MessageFilter, Network


def win_election(net: Network, node_id: int, tries: int = 5) -> None:
    """Campaign until `node_id` wins (a try may only teach it a newer term)."""
    for _ in range(tries):
        net.campaign(node_id)
        net.stabilize()
        if net.state(node_id) == StateType.LEADER:
            return
    raise AssertionError(f"{node_id} could not win in {tries} tries")


def no_appends_from(node_id: int) -> MessageFilter:
    return lambda m: not (m.type == MT.APP and m.frm == node_id)


def strip_entries_newer_than_term_1(m: Message) -> bool:
    """A link that loses the entries of terms after 1 (the rest of the message arrives)."""
    if m.type == MT.APP:
        m.entries = [e for e in m.entries if e.term == 1]
    return True


def index_terms(net: Network, node_id: int, index: int) -> int:
    return net.raw(node_id).raft.raft_log.term(index)


def figure_8_c(net: Network) -> None:
    """Play Figure 8 (a)-(c). Afterwards S1 leads (term 3) and entry 2 of term 1
    ("a") is on S1-S4, a majority, while S1's own term-3 entry 3 is on S1 only."""
    net.elect(1)  # term 1, entry 1 committed everywhere
    # (a) S1 replicates entry 2 ("a", term 1) to S2 only.
    net.partition({1, 2}, {3, 4, 5})
    assert net.propose(1, b"a")
    net.stabilize()
    assert net.raw(1).raft.raft_log.committed == 1
    # (b) S1 crashes; S5 wins term 2 with S3 and S4 and appends entry 2 of term 2,
    # which reaches nobody.
    net.crash(1)
    only_s5 = no_appends_from(5)
    net.filters.append(only_s5)
    net.elect(5)
    assert (net.term(5), index_terms(net, 5, 2)) == (2, 2)
    assert net.raw(3).raft.raft_log.last_index() == 1
    # (c) S5 crashes; S1 restarts, wins term 3 and replicates entry 2 to S3 and
    # S4 (S2 has it), but its entry of term 3 reaches nobody.
    net.crash(5)
    net.filters.remove(only_s5)
    net.heal()
    net.restart(1)
    net.filters.append(strip_entries_newer_than_term_1)
    win_election(net, 1)
    net.tick_all(3)
    assert net.term(1) == 3


def test_figure_8_leader_does_not_commit_an_old_term_entry_by_counting_replicas() -> None:
    net = Network((1, 2, 3, 4, 5))
    figure_8_c(net)
    for i in (1, 2, 3, 4):
        assert index_terms(net, i, 2) == 1, f"S{i} should hold entry 2 of term 1"
    progress = net.raw(1).raft.prs.progress
    assert sorted(progress[i].match for i in (2, 3, 4)) == [2, 2, 2], "and S1 knows it"
    assert net.raw(1).raft.raft_log.committed == 1, "entry 2 is on a majority, yet not safe"
    # (d) Why: S1 crashes and S5, whose last term (2) is newer, can win and erase entry 2.
    net.crash(1)
    net.filters.clear()
    net.restart(5)
    win_election(net, 5)
    net.tick_all(3)
    for i in (2, 3, 4, 5):
        assert index_terms(net, i, 2) == 2
        assert b"a" not in net.applied(i)
    assert all(net.nodes[i].storage.hard_state.commit >= 2 for i in (2, 3, 4, 5))


def test_figure_8_old_term_entry_commits_with_the_leaders_current_term_entry() -> None:
    net = Network((1, 2, 3, 4, 5))
    figure_8_c(net)
    # (e) S1 replicates its term-3 entry to a majority: entries 2 and 3 commit.
    net.filters.clear()
    net.tick_all(3)
    assert net.raw(1).raft.raft_log.committed == 3
    assert all(net.applied(i) == [b"a"] for i in (1, 2, 3, 4))
    # Now S5 can no longer win: a majority has a log newer than its own.
    net.crash(1)
    net.restart(5)
    for _ in range(3):
        net.campaign(5)
        net.stabilize()
        assert net.state(5) != StateType.LEADER
    lead = net.wait_leader()
    net.tick_all(3)
    assert net.applied(5) == [b"a"]
    assert lead != 5


def test_new_leader_has_every_committed_entry() -> None:
    net = Network((1, 2, 3, 4, 5))
    net.elect(1)
    for i in range(5):
        assert net.propose(1, b"x%d" % i)
    net.stabilize()
    committed = net.raw(1).raft.raft_log.all_entries()
    assert net.raw(1).raft.raft_log.committed == committed[-1].index
    net.crash(1)
    net.crash(2)  # the remaining majority must still produce a complete leader
    lead = net.wait_leader()
    log = net.raw(lead).raft.raft_log
    assert log.all_entries()[: len(committed)] == committed


def test_committed_entries_survive_a_crash_of_every_node() -> None:
    net = Network((1, 2, 3))
    net.elect(2)
    for i in range(4):
        assert net.propose(2, b"x%d" % i)
    net.stabilize()
    before = {i: list(net.applied(i)) for i in (1, 2, 3)}
    for i in (1, 2, 3):
        net.crash(i)
    for i in (1, 2, 3):
        net.restart(i)
        assert net.raw(i).raft.raft_log.committed >= 5
    lead = net.wait_leader()
    assert net.propose(lead, b"after")
    net.stabilize()
    for i in (1, 2, 3):
        assert net.applied(i) == before[i] + [b"after"]


def test_uncommitted_entries_of_a_deposed_leader_are_replaced() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.isolate(1)
    assert net.propose(1, b"lost")  # accepted by the old leader, never committed
    net.stabilize()
    net.elect(2)
    assert net.propose(2, b"kept")
    net.stabilize()
    net.heal()
    net.tick_all(3)
    assert net.leader() == 2
    for i in (1, 2, 3):
        assert net.applied(i) == [b"kept"]
        assert b"lost" not in [e.data for e in net.raw(i).raft.raft_log.all_entries()]


def test_follower_ignores_append_that_would_rewrite_its_committed_entries_from_old_leader() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    assert net.propose(1, b"x")
    net.stabilize()
    net.elect(2)  # term 2
    old = Message(MT.APP, to=3, frm=1, term=1, index=1, log_term=1, commit=1)
    net.deliver(old)
    net.process_readies()
    assert net.applied(3) == [b"x"]
    assert net.term(3) == 2
