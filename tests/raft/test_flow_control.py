"""Flow control of replication: inflight window, message size, Probe/Replicate."""

from __future__ import annotations

from multiraft.raft import Config, MemoryStorage, Message, RawNode
from multiraft.raft import MessageType as MT
from multiraft.raft.tracker.progress import ProgressState
from tests.raft.network import Network, bootstrapped_storage


def apps_to(net: Network, to: int, since: int = 0, with_entries: bool = False) -> list[Message]:
    return [
        m
        for m in net.sent[since:]
        if m.type == MT.APP and m.to == to and (m.entries or not with_entries)
    ]


def test_followers_start_in_probe_and_move_to_replicate_after_an_ack() -> None:
    net = Network((1, 2, 3))
    net.campaign(1)
    net.stabilize()
    prs = net.raw(1).raft.prs.progress
    assert {prs[i].state for i in (2, 3)} == {ProgressState.REPLICATE}
    net = Network((1, 2, 3))
    net.filters.append(lambda m: m.type != MT.APP_RESP)
    net.campaign(1)
    net.stabilize()
    prs = net.raw(1).raft.prs.progress
    assert {prs[i].state for i in (2, 3)} == {ProgressState.PROBE}


def test_inflight_window_bounds_unacknowledged_appends() -> None:
    net = Network((1, 2, 3), max_inflight_msgs=3)
    net.elect(1)
    acks = net.intercept(lambda m: m.type == MT.APP_RESP and m.frm == 2)
    mark = len(net.sent)
    for i in range(10):
        assert net.propose(1, b"x%d" % i)
        net.stabilize()
    assert net.applied(1) == [b"x%d" % i for i in range(10)], "node 3 acknowledges"
    assert len(apps_to(net, 2, mark, with_entries=True)) == 3, "the window is full"
    assert len(apps_to(net, 3, mark, with_entries=True)) == 10
    net.filters.clear()
    mark = len(net.sent)
    net.deliver(acks[0])
    net.process_readies()
    (app,) = apps_to(net, 2, mark, with_entries=True)
    assert [e.data for e in app.entries] == [b"x%d" % i for i in range(3, 10)]


def test_heartbeat_response_frees_a_full_window() -> None:
    """The acks may have been lost: a heartbeat response lets one more append out."""
    net = Network((1, 2, 3), max_inflight_msgs=2)
    net.elect(1)
    net.intercept(lambda m: m.type == MT.APP_RESP and m.frm == 2)
    for i in range(3):
        assert net.propose(1, b"x%d" % i)
        net.process_readies()
    mark = len(net.sent)
    net.tick_all(1)
    assert len(apps_to(net, 2, mark)) == 1


def test_append_size_is_bounded_by_max_size_per_msg() -> None:
    net = Network((1, 2, 3), max_size_per_msg=250)
    net.elect(1)
    net.isolate(3)
    data = [bytes([i]) * 100 for i in range(7)]
    for d in data:
        assert net.propose(1, d)
    net.stabilize()
    net.heal()
    mark = len(net.sent)
    net.tick_all(3)
    apps = [m for m in apps_to(net, 3, mark) if m.entries]
    assert apps and all(1 <= len(m.entries) <= 2 for m in apps)
    assert net.applied(3) == data
    big = Network((1, 2), max_size_per_msg=10)
    big.elect(1)
    assert big.propose(1, b"z" * 100)
    big.stabilize()
    assert big.applied(2) == [b"z" * 100], "an entry over the limit still goes, alone"


def test_probe_sends_one_append_per_heartbeat_interval() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.raw(1).report_unreachable(2)
    assert net.raw(1).raft.prs.progress[2].state == ProgressState.PROBE
    net.filters.append(lambda m: not (m.type == MT.APP and m.to == 2))
    mark = len(net.sent)
    for i in range(3):
        assert net.propose(1, b"x%d" % i)
        net.process_readies()
    assert len(apps_to(net, 2, mark)) == 1
    mark = len(net.sent)
    net.tick_all(1)
    assert len(apps_to(net, 2, mark)) == 1
    net.filters.clear()
    net.tick_all(1)
    assert net.raw(1).raft.prs.progress[2].state == ProgressState.REPLICATE
    assert net.applied(2) == [b"x0", b"x1", b"x2"]


def test_report_unreachable_only_affects_replicating_followers() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    prs = net.raw(1).raft.prs.progress
    net.raw(1).report_unreachable(2)
    assert (prs[2].state, prs[3].state) == (ProgressState.PROBE, ProgressState.REPLICATE)
    net.raw(2).report_unreachable(1)  # a follower has no progress: ignored


def test_rejected_append_moves_replicate_back_to_probe() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.intercept(lambda m: m.frm == 2)
    for d in (b"a", b"b"):
        assert net.propose(1, d)
        net.process_readies()
    pr = net.raw(1).raft.prs.progress[2]
    assert (pr.state, pr.match, pr.next) == (ProgressState.REPLICATE, 1, 4)
    net.filters.clear()
    net.deliver(
        Message(MT.APP_RESP, to=1, frm=2, term=1, index=2, reject=True, reject_hint=1, log_term=1)
    )
    assert (pr.state, pr.next) == (ProgressState.PROBE, 2)
    net.stabilize()
    assert pr.state == ProgressState.REPLICATE and net.applied(2) == [b"a", b"b"]


def test_committed_entries_per_ready_are_bounded() -> None:
    storage = bootstrapped_storage((1,))
    raw = RawNode(Config(1, max_committed_size_per_ready=50), storage)
    raw.campaign()
    applied: list[bytes] = []
    sizes: list[int] = []

    def drain(storage: MemoryStorage) -> None:
        for _ in range(100):
            if not raw.has_ready():
                return
            rd = raw.ready()
            storage.append(rd.entries)
            if rd.hard_state is not None:
                storage.set_hard_state(rd.hard_state)
            sizes.append(sum(e.size() for e in rd.committed_entries))
            assert len(rd.committed_entries) <= 1 or sizes[-1] <= 50
            applied.extend(e.data for e in rd.committed_entries if e.data)
            raw.advance(rd)

    drain(storage)
    data = [b"d%d" % i * 10 for i in range(6)]
    for d in data:
        raw.propose(d)
    drain(storage)
    assert applied == data
    assert len([s for s in sizes if s]) >= 4, f"expected several Readies, got {sizes}"
