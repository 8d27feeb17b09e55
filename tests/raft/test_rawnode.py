"""The RawNode contract: input, Ready output, advance, restart and status."""

import pytest

from multiraft.raft import (
    NONE,
    ConfChange,
    ConfChangeType,
    Config,
    ConfState,
    Entry,
    EntryType,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    ProposalDropped,
    RawNode,
    ReadOnlyOption,
    ReadState,
    Snapshot,
    SnapshotMetadata,
    SnapshotStatus,
    SnapshotTemporarilyUnavailable,
    SoftState,
    StateType,
    StepLocalMessage,
    StepPeerNotFound,
)
from multiraft.raft.rawnode import Ready
from multiraft.raft.tracker import ProgressState
from tests.raft.network import Network

MT = MessageType
LEADER, FOLLOWER, CANDIDATE = StateType.LEADER, StateType.FOLLOWER, StateType.CANDIDATE


def new_node(node_id=1, voters=(1,), learners=(), storage=None, **cfg):
    s = storage if storage is not None else MemoryStorage(ConfState(voters, learners))
    return RawNode(Config(node_id, **cfg), s), s


def persist(s, rd):
    if rd.snapshot is not None:
        s.apply_snapshot(rd.snapshot)
    s.append(rd.entries)
    if rd.hard_state is not None:
        s.set_hard_state(rd.hard_state)


def handle(n, s):
    """One full Ready cycle: persist, (send), apply, advance."""
    rd = n.ready()
    persist(s, rd)
    n.advance(rd)
    return rd


def single_leader():
    """A single-voter group whose leader has committed its empty entry."""
    n, s = new_node()
    n.campaign()
    handle(n, s)
    handle(n, s)
    assert not n.has_ready()
    return n, s


class Cluster:
    """A few RawNodes wired together synchronously; `cut` nodes hear nothing."""

    def __init__(self, size=3, **cfg):
        ids = tuple(range(1, size + 1))
        self.nodes, self.stores = {}, {}
        for i in ids:
            self.nodes[i], self.stores[i] = new_node(i, ids, **cfg)
        self.cut = set()
        self.applied = {i: [] for i in ids}

    def settle(self):
        for _ in range(100):
            msgs = []
            for i, n in self.nodes.items():
                if n.has_ready():
                    rd = n.ready()
                    persist(self.stores[i], rd)
                    msgs += rd.messages
                    self.applied[i] += rd.committed_entries
                    n.advance(rd)
            for m in msgs:
                if m.to not in self.cut and m.frm not in self.cut:
                    self.nodes[m.to].step(m)
            if not msgs and not any(n.has_ready() for n in self.nodes.values()):
                return
        raise AssertionError("cluster did not settle")

    def elect(self, node_id=1):
        self.nodes[node_id].campaign()
        self.settle()
        assert self.nodes[node_id].raft.state == LEADER
        return self.nodes[node_id]


# -- a single node, step by step ---------------------------------------------------


def test_fresh_node_has_no_ready():
    n, _ = new_node()
    assert not n.has_ready()
    st = n.status()
    assert st.soft_state == SoftState(NONE, FOLLOWER)
    assert st.hard_state == HardState()


def test_single_node_campaign_propose_commit():
    n, s = new_node()
    n.campaign()
    assert n.has_ready()

    rd = n.ready()
    assert rd.soft_state == SoftState(1, LEADER)
    assert rd.hard_state == HardState(term=1, vote=1, commit=0)
    assert rd.entries == [Entry(1, 1)]
    assert rd.committed_entries == []
    assert rd.messages == []
    assert rd.must_sync
    # Not yet persisted: the leader's own entry does not count toward commit.
    assert n.raft.raft_log.committed == 0
    assert n.has_ready()
    persist(s, rd)
    n.advance(rd)

    rd = n.ready()
    assert rd.soft_state is None
    assert rd.hard_state == HardState(1, 1, 1)
    assert rd.entries == []
    assert rd.committed_entries == [Entry(1, 1)]
    assert not rd.must_sync  # only the commit index changed
    persist(s, rd)
    n.advance(rd)
    assert not n.has_ready()

    n.propose(b"x")
    assert n.has_ready()
    rd = n.ready()
    assert rd.hard_state is None  # unchanged HardState is not handed out
    assert rd.entries == [Entry(1, 2, EntryType.NORMAL, b"x")]
    assert rd.committed_entries == []
    assert rd.must_sync
    persist(s, rd)
    n.advance(rd)

    rd = n.ready()
    assert rd.hard_state == HardState(1, 1, 2)
    assert rd.committed_entries == [Entry(1, 2, EntryType.NORMAL, b"x")]
    assert rd.entries == []
    n.advance(rd)
    assert not n.has_ready()
    assert n.status().applied == 2


def test_leader_commits_own_entries_only_after_advance():
    n, s = single_leader()
    n.propose(b"a")
    n.propose(b"b")
    rd1 = n.ready()
    assert [e.data for e in rd1.entries] == [b"a", b"b"]
    # A second ready() before advance hands out the same unstable entries.
    rd2 = n.ready()
    assert rd2.entries == rd1.entries
    assert rd2.messages == []
    persist(s, rd1)
    assert n.raft.raft_log.committed == 1
    n.advance(rd1)
    assert n.raft.raft_log.committed == 3
    assert [e.data for e in handle(n, s).committed_entries] == [b"a", b"b"]


def test_advance_of_partial_ready_counts_only_what_was_persisted():
    n, s = single_leader()
    n.propose(b"a")
    rd = n.ready()
    n.propose(b"b")  # arrives after the Ready was taken
    persist(s, rd)
    n.advance(rd)
    assert n.raft.raft_log.committed == 2
    rd = n.ready()
    assert [e.data for e in rd.entries] == [b"b"]
    assert [e.data for e in rd.committed_entries] == [b"a"]
    persist(s, rd)
    n.advance(rd)
    assert n.raft.raft_log.committed == 3


def test_ready_without_changes_is_empty():
    n, _ = single_leader()
    rd = n.ready()
    assert rd == Ready()


def test_soft_state_reported_once_per_change():
    c = Cluster(3)
    n2 = c.nodes[2]
    c.elect(1)
    assert n2.status().soft_state == SoftState(1, FOLLOWER)
    assert not n2.has_ready()
    c.nodes[1].raft.become_follower(2, NONE)  # steps down: soft state changes
    rd = c.nodes[1].ready()
    assert rd.soft_state == SoftState(NONE, FOLLOWER)
    assert c.nodes[1].ready().soft_state is None


def test_must_sync_on_vote_without_entries():
    n, s = new_node(2, voters=(1, 2, 3))
    n.step(Message(MT.VOTE, to=2, frm=1, term=1, index=0, log_term=0))
    rd = n.ready()
    assert rd.entries == []
    assert rd.hard_state == HardState(1, 1, 0)
    assert rd.must_sync
    assert [(m.type, m.to, m.reject) for m in rd.messages] == [(MT.VOTE_RESP, 1, False)]
    persist(s, rd)
    n.advance(rd)
    assert not n.has_ready()


def test_must_sync_on_term_change():
    n, _ = new_node(2, voters=(1, 2, 3))
    n.step(Message(MT.HEARTBEAT, to=2, frm=1, term=3))
    rd = n.ready()
    assert rd.hard_state == HardState(3, NONE, 0)
    assert rd.soft_state == SoftState(1, FOLLOWER)
    assert rd.must_sync
    assert [(m.type, m.to, m.term) for m in rd.messages] == [(MT.HEARTBEAT_RESP, 1, 3)]


def test_must_sync_false_on_commit_only_change():
    n, s = new_node(2, voters=(1, 2, 3))
    n.step(Message(MT.APP, to=2, frm=1, term=1, entries=[Entry(1, 1), Entry(1, 2)]))
    rd = n.ready()
    assert rd.must_sync
    assert rd.entries == [Entry(1, 1), Entry(1, 2)]
    persist(s, rd)
    n.advance(rd)
    n.step(Message(MT.HEARTBEAT, to=2, frm=1, term=1, commit=2))
    rd = n.ready()
    assert rd.hard_state == HardState(1, NONE, 2)
    assert rd.committed_entries == [Entry(1, 1), Entry(1, 2)]
    assert not rd.must_sync


def test_follower_applies_committed_entries_in_same_ready_as_entries():
    n, s = new_node(2, voters=(1, 2, 3))
    n.step(Message(MT.APP, to=2, frm=1, term=1, commit=1, entries=[Entry(1, 1), Entry(1, 2)]))
    rd = n.ready()
    assert rd.entries == [Entry(1, 1), Entry(1, 2)]
    assert rd.committed_entries == [Entry(1, 1)]
    assert [(m.type, m.index) for m in rd.messages] == [(MT.APP_RESP, 2)]
    persist(s, rd)
    n.advance(rd)
    assert n.status().applied == 1
    assert not n.has_ready()


def test_has_ready_stays_true_until_advance():
    n, s = single_leader()
    n.propose(b"x")
    rd = n.ready()
    assert n.has_ready()  # the entries are still unstable
    persist(s, rd)
    n.advance(rd)
    assert n.has_ready()  # now committed, waiting to be applied
    handle(n, s)
    assert not n.has_ready()


def test_tick_without_timeout_has_no_ready():
    n, _ = new_node(1, voters=(1, 2, 3), election_tick=10)
    n.tick()
    assert not n.has_ready()


def test_election_timeout_starts_campaign():
    n, _ = new_node(1, voters=(1, 2, 3), election_tick=5)
    for _ in range(2 * 5):
        n.tick()
    rd = n.ready()
    assert rd.soft_state == SoftState(NONE, CANDIDATE)
    assert rd.hard_state == HardState(1, 1, 0)
    assert sorted((m.type, m.to, m.term) for m in rd.messages) == [
        (MT.VOTE, 2, 1),
        (MT.VOTE, 3, 1),
    ]


# -- step() -------------------------------------------------------------------------


@pytest.mark.parametrize("t", [MT.HUP, MT.BEAT, MT.UNREACHABLE, MT.SNAP_STATUS, MT.CHECK_QUORUM])
def test_step_rejects_local_messages(t):
    n, _ = single_leader()
    assert isinstance(n.step(Message(t, to=1, frm=1, term=1)), StepLocalMessage)
    assert not n.has_ready()


@pytest.mark.parametrize(
    "t",
    [MT.APP_RESP, MT.VOTE_RESP, MT.HEARTBEAT_RESP, MT.PRE_VOTE_RESP, MT.READ_INDEX_RESP],
)
def test_step_rejects_responses_from_unknown_peers(t):
    n, _ = single_leader()
    assert isinstance(n.step(Message(t, to=1, frm=9, term=1)), StepPeerNotFound)
    assert not n.has_ready()


def test_step_accepts_requests_from_unknown_peers():
    n, _ = new_node(1, voters=(1, 2, 3))
    n.step(Message(MT.HEARTBEAT, to=1, frm=9, term=1))
    assert n.status().soft_state.lead == 9


def test_step_ignores_stale_term():
    n, _ = new_node(2, voters=(1, 2, 3))
    n.step(Message(MT.HEARTBEAT, to=2, frm=1, term=5))
    n.ready()
    n.step(Message(MT.APP, to=2, frm=3, term=4, entries=[Entry(4, 1)]))
    rd = n.ready()
    assert rd.entries == [] and rd.messages == []
    assert n.status().soft_state.lead == 1


# -- proposals ------------------------------------------------------------------------


def test_propose_without_leader_is_dropped():
    n, _ = new_node(1, voters=(1, 2, 3))
    assert isinstance(n.propose(b"x"), ProposalDropped)
    assert not n.has_ready()


def test_propose_as_candidate_is_dropped():
    n, _ = new_node(1, voters=(1, 2, 3))
    n.campaign()
    assert n.status().soft_state.raft_state == CANDIDATE
    assert isinstance(n.propose(b"x"), ProposalDropped)
    assert isinstance(
        n.propose_conf_change(ConfChange(ConfChangeType.ADD_NODE, 4)), ProposalDropped
    )


def test_follower_forwards_proposals_to_leader():
    c = Cluster(3)
    c.elect(1)
    c.nodes[2].propose(b"fwd")
    rd = c.nodes[2].ready()
    (m,) = rd.messages
    assert (m.type, m.to, m.frm, [e.data for e in m.entries]) == (MT.PROP, 1, 2, [b"fwd"])
    c.nodes[1].step(m)
    c.settle()
    for i in (1, 2, 3):
        assert [e.data for e in c.applied[i] if e.data] == [b"fwd"]


def test_follower_without_forwarding_drops_proposals():
    c = Cluster(3, disable_proposal_forwarding=True)
    c.elect(1)
    assert isinstance(c.nodes[2].propose(b"x"), ProposalDropped)
    assert not c.nodes[2].has_ready()


def test_three_node_replication():
    c = Cluster(3)
    leader = c.elect(1)
    leader.propose(b"a")
    leader.propose(b"b")
    c.settle()
    for i in (1, 2, 3):
        assert [e.data for e in c.applied[i]] == [b"", b"a", b"b"]
        assert c.stores[i].hard_state == HardState(1, 1, 3)


def test_leader_transfer_blocks_proposals():
    c = Cluster(3)
    leader = c.elect(1)
    c.cut.add(3)
    leader.propose(b"a")
    c.settle()  # node 3 is now behind
    leader.transfer_leader(3)
    assert leader.status().lead_transferee == 3
    assert isinstance(leader.propose(b"b"), ProposalDropped)
    c.cut.clear()
    leader.tick()  # a heartbeat round lets node 3 catch up, then it gets TimeoutNow
    c.settle()
    assert c.nodes[3].raft.state == LEADER
    assert c.nodes[1].raft.state == FOLLOWER
    assert c.nodes[1].status().lead_transferee == NONE


def test_transfer_leader_to_up_to_date_follower():
    c = Cluster(3)
    c.elect(1)
    c.nodes[1].transfer_leader(2)
    c.settle()
    assert c.nodes[2].raft.state == LEADER
    assert c.nodes[2].raft.term == 2
    assert {n.status().soft_state.lead for n in c.nodes.values()} == {2}


# -- membership -----------------------------------------------------------------------


def test_propose_and_apply_conf_change():
    n, s = single_leader()
    cc = ConfChange(ConfChangeType.ADD_NODE, 2, b"ctx")
    n.propose_conf_change(cc)
    rd = handle(n, s)
    assert [e.type for e in rd.entries] == [EntryType.CONF_CHANGE]
    rd = handle(n, s)
    (e,) = rd.committed_entries
    assert e.type == EntryType.CONF_CHANGE
    assert ConfChange.decode(e.data) == cc
    assert n.apply_conf_change(cc) == ConfState((1, 2), ())
    st = n.status()
    assert set(st.progress) == {1, 2}
    # With two voters, a new entry needs node 2's acknowledgement.
    n.propose(b"x")
    rd = handle(n, s)
    apps = [m for m in rd.messages if m.type == MT.APP and m.to == 2]
    assert apps
    assert n.raft.raft_log.committed == 2


def test_second_conf_change_before_apply_becomes_noop():
    n, s = single_leader()
    n.propose_conf_change(ConfChange(ConfChangeType.ADD_NODE, 2))
    n.propose_conf_change(ConfChange(ConfChangeType.ADD_NODE, 3))
    rd = n.ready()
    assert [(e.index, e.type, e.data) for e in rd.entries] == [
        (2, EntryType.CONF_CHANGE, ConfChange(ConfChangeType.ADD_NODE, 2).encode()),
        (3, EntryType.NORMAL, b""),
    ]
    persist(s, rd)
    n.advance(rd)
    handle(n, s)  # applies index 2 and 3
    n.propose_conf_change(ConfChange(ConfChangeType.ADD_NODE, 3))
    assert n.ready().entries[0].type == EntryType.CONF_CHANGE


def test_apply_conf_change_learner_and_remove():
    n, _ = single_leader()
    assert n.apply_conf_change(ConfChange(ConfChangeType.ADD_LEARNER_NODE, 4)) == ConfState(
        (1,), (4,)
    )
    assert n.status().progress[4].is_learner
    assert n.apply_conf_change(ConfChange(ConfChangeType.ADD_NODE, 4)) == ConfState((1, 4), ())
    assert n.apply_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, 4)) == ConfState((1,), ())
    assert n.apply_conf_change(ConfChange(ConfChangeType.ADD_NODE, NONE)) == ConfState((1,), ())
    assert n.status().soft_state == SoftState(1, LEADER)


def test_leader_removing_itself_steps_down():
    n, _ = single_leader()
    assert n.apply_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, 1)) == ConfState()
    assert n.status().soft_state == SoftState(NONE, FOLLOWER)
    assert n.ready().soft_state == SoftState(NONE, FOLLOWER)


def test_removing_a_voter_can_commit():
    c = Cluster(3)
    leader = c.elect(1)
    c.cut.update({2, 3})
    leader.propose(b"x")
    c.settle()
    assert leader.raft.raft_log.committed == 1
    leader.apply_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, 3))
    leader.apply_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, 2))
    assert leader.raft.raft_log.committed == 2


def test_learner_does_not_campaign():
    n, _ = new_node(2, voters=(1,), learners=(2,), election_tick=3)
    for _ in range(10):
        n.tick()
    n.campaign()
    assert n.status().soft_state == SoftState(NONE, FOLLOWER)
    assert not n.has_ready()


# -- restart ------------------------------------------------------------------------


def restarted_storage():
    s = MemoryStorage(ConfState((1,)))
    s.append([Entry(1, 1), Entry(1, 2, data=b"a"), Entry(1, 3, data=b"b")])
    s.set_hard_state(HardState(1, 1, 3))
    return s


@pytest.mark.parametrize(
    "applied, want",
    [
        (0, [b"", b"a", b"b"]),
        (2, [b"b"]),
        (3, []),
    ],
)
def test_restart_with_applied(applied, want):
    n, _ = new_node(storage=restarted_storage(), applied=applied)
    st = n.status()
    assert st.hard_state == HardState(1, 1, 3)
    assert st.soft_state == SoftState(NONE, FOLLOWER)
    assert st.applied == applied
    assert n.has_ready() is bool(want)
    rd = n.ready()
    assert [e.data for e in rd.committed_entries] == want
    assert rd.hard_state is None  # nothing new to persist
    assert rd.entries == []
    assert not rd.must_sync


def test_restart_with_applied_beyond_commit_asserts():
    with pytest.raises(AssertionError):
        new_node(storage=restarted_storage(), applied=4)


def test_restart_with_commit_beyond_log_asserts():
    s = restarted_storage()
    s.set_hard_state(HardState(1, 1, 4))
    with pytest.raises(AssertionError):
        new_node(storage=s)


def test_restart_then_campaign_keeps_log():
    n, s = new_node(storage=restarted_storage(), applied=3)
    n.campaign()
    rd = handle(n, s)
    assert rd.hard_state == HardState(2, 1, 3)
    assert rd.entries == [Entry(2, 4)]
    rd = handle(n, s)
    assert rd.committed_entries == [Entry(2, 4)]
    assert n.status().applied == 4


def test_restart_from_snapshot():
    s = MemoryStorage()
    s.apply_snapshot(Snapshot(b"sm", SnapshotMetadata(ConfState((1, 2)), 10, 3)))
    s.append([Entry(3, 11, data=b"x")])
    s.set_hard_state(HardState(3, 1, 11))
    n, _ = new_node(storage=s)
    st = n.status()
    assert st.applied == 10
    assert [e.data for e in n.ready().committed_entries] == [b"x"]
    assert n.raft.prs.conf_state() == ConfState((1, 2))


# -- status, reads, reports ----------------------------------------------------------


def test_status():
    c = Cluster(3)
    leader = c.elect(1)
    st = leader.status()
    assert (st.id, st.hard_state, st.soft_state) == (1, HardState(1, 1, 1), SoftState(1, LEADER))
    assert st.applied == 1
    assert st.lead_transferee == NONE
    assert set(st.progress) == {1, 2, 3}
    assert all(pr.match == 1 for pr in st.progress.values())
    fst = c.nodes[2].status()
    assert (fst.id, fst.soft_state, fst.progress) == (2, SoftState(1, FOLLOWER), {})


def test_read_index_single_node():
    n, _ = single_leader()
    n.read_index(b"ctx")
    assert n.has_ready()
    rd = n.ready()
    assert rd.read_states == [ReadState(1, b"ctx")]
    n.advance(rd)
    assert not n.has_ready()
    assert n.ready().read_states == []


def test_read_index_without_leader_is_dropped():
    n, _ = new_node(1, voters=(1, 2, 3))
    n.read_index(b"ctx")
    assert not n.has_ready()


def test_read_index_three_nodes_via_leader_and_follower():
    c = Cluster(3)
    c.elect(1)
    c.nodes[1].read_index(b"r1")
    c.nodes[2].read_index(b"r2")
    rd1, rd2 = c.nodes[1].ready(), c.nodes[2].ready()
    assert rd1.read_states == []  # waits for a heartbeat quorum (SAFE)
    hb_ctx = {m.context for m in rd1.messages if m.type == MT.HEARTBEAT}
    assert hb_ctx == {b"r1"}
    (fwd,) = rd2.messages
    assert (fwd.type, fwd.to, fwd.context) == (MT.READ_INDEX, 1, b"r2")
    for m in rd1.messages:
        c.nodes[m.to].step(m)
    c.nodes[1].step(fwd)
    c.nodes[1].advance(rd1)
    c.nodes[2].advance(rd2)
    got = {}
    for _ in range(5):
        for i, n in c.nodes.items():
            rd = n.ready()
            got.setdefault(i, []).extend(rd.read_states)
            for m in rd.messages:
                c.nodes[m.to].step(m)
            n.advance(rd)
    assert got[1] == [ReadState(1, b"r1")]
    assert got[2] == [ReadState(1, b"r2")]


def test_report_unreachable_and_snapshot_on_follower_are_noops():
    n, _ = new_node(1, voters=(1, 2, 3))
    n.report_unreachable(2)
    n.report_snapshot(2, SnapshotStatus.FINISH)
    n.report_snapshot(2, SnapshotStatus.FAILURE)
    assert not n.has_ready()


def test_report_unreachable_moves_replicating_peer_to_probe():
    c = Cluster(3)
    leader = c.elect(1)
    pr = leader.status().progress[2]
    assert pr.state == ProgressState.REPLICATE
    leader.report_unreachable(2)
    assert pr.state == ProgressState.PROBE
    assert pr.next == pr.match + 1
    leader.report_unreachable(9)  # unknown peer: ignored
    leader.report_unreachable(2)  # already probing: ignored
    assert pr.state == ProgressState.PROBE


@pytest.mark.parametrize(
    "status, wnext",
    [(SnapshotStatus.FINISH, 6), (SnapshotStatus.FAILURE, 2)],
)
def test_report_snapshot(status, wnext):
    c = Cluster(3)
    leader = c.elect(1)
    pr = leader.status().progress[2]
    pr.become_snapshot(5)
    leader.report_snapshot(2, status)
    assert pr.state == ProgressState.PROBE
    assert pr.next == wnext
    assert pr.probe_sent  # wait for the follower's answer before the next append
    assert pr.is_paused()


def test_report_snapshot_outside_snapshot_state_is_ignored():
    c = Cluster(3)
    leader = c.elect(1)
    pr = leader.status().progress[2]
    leader.report_snapshot(2, SnapshotStatus.FAILURE)
    leader.report_snapshot(9, SnapshotStatus.FAILURE)
    assert pr.state == ProgressState.REPLICATE


def lagging_cluster(snapshot=True):
    """Leader 1 compacted its log past what node 3 (cut off meanwhile) has."""
    c = Cluster(3)
    leader = c.elect(1)
    c.cut.add(3)
    for i in range(5):
        leader.propose(b"%d" % i)
    c.settle()
    leader.report_unreachable(3)
    if snapshot:
        c.stores[1].create_snapshot(6, ConfState((1, 2, 3)), b"sm@6")
    c.stores[1].compact(6)
    c.cut.clear()
    return c, leader, leader.status().progress[3]


def test_lagging_follower_gets_snapshot():
    c, leader, pr3 = lagging_cluster()
    s1 = c.stores[1]
    assert (pr3.state, pr3.next) == (ProgressState.PROBE, 2)

    leader.tick()  # heartbeat; node 3 answers; the leader must send a snapshot
    deliver(c, leader.ready())
    deliver(c, c.nodes[3].ready())
    rd = leader.ready()
    (m,) = rd.messages
    assert (m.type, m.to) == (MT.SNAP, 3)
    assert m.snapshot == s1.snapshot()
    assert (pr3.state, pr3.pending_snapshot) == (ProgressState.SNAPSHOT, 6)
    deliver(c, rd)

    n3 = c.nodes[3]
    rd3 = n3.ready()
    assert rd3.snapshot == s1.snapshot()
    assert rd3.committed_entries == [] and rd3.entries == []
    assert rd3.hard_state == HardState(1, 1, 6)
    persist(c.stores[3], rd3)
    n3.advance(rd3)
    assert n3.status().applied == 6
    assert not n3.raft.raft_log.has_pending_snapshot()
    deliver(c, rd3, advance=False)  # APP_RESP(6) moves the leader back to replicate
    assert (pr3.state, pr3.match) == (ProgressState.REPLICATE, 6)
    leader.report_snapshot(3, SnapshotStatus.FINISH)  # late report: ignored
    assert pr3.state == ProgressState.REPLICATE
    leader.propose(b"after")
    c.settle()
    # Node 3 applied entry 1 itself, 2..6 through the snapshot, then 7.
    assert [(e.index, e.data) for e in c.applied[3]] == [(1, b""), (7, b"after")]


def deliver(c, rd, advance=True):
    """Send `rd`'s messages; the sender is whoever produced `rd`."""
    senders = {m.frm for m in rd.messages}
    for m in rd.messages:
        c.nodes[m.to].step(m)
    if advance:
        for i in senders:
            persist(c.stores[i], rd)
            c.nodes[i].advance(rd)


def test_snapshot_temporarily_unavailable_is_retried(monkeypatch):
    c, leader, pr3 = lagging_cluster()

    def busy():
        raise SnapshotTemporarilyUnavailable("busy")

    monkeypatch.setattr(c.stores[1], "snapshot", busy)
    leader.tick()
    c.settle()
    assert (pr3.state, pr3.match) == (ProgressState.PROBE, 1)
    assert c.stores[3].last_index() == 1
    monkeypatch.undo()
    leader.tick()
    c.settle()  # snapshot sent, applied and acknowledged
    assert (pr3.state, pr3.match) == (ProgressState.REPLICATE, 6)
    assert c.stores[3].snapshot().metadata.index == 6


def test_compacting_without_snapshot_is_a_contract_violation():
    c, leader, _ = lagging_cluster(snapshot=False)
    leader.tick()
    with pytest.raises(AssertionError, match="non-empty snapshot"):
        c.settle()


def snap_message(index=5, term=1, voters=(1, 2, 3)):
    sn = Snapshot(b"sm", SnapshotMetadata(ConfState(voters), index, term))
    return Message(MT.SNAP, to=2, frm=1, term=term, snapshot=sn)


def test_follower_with_pending_snapshot_does_not_campaign():
    n, s = new_node(2, voters=(1, 2, 3), election_tick=3)
    n.step(snap_message())
    n.campaign()
    for _ in range(10):
        n.tick()
    assert n.status().soft_state == SoftState(1, FOLLOWER)
    n.step(Message(MT.HEARTBEAT, to=2, frm=3, term=2))  # a new term meanwhile
    rd = n.ready()
    assert rd.snapshot.metadata.index == 5
    assert rd.hard_state == HardState(2, NONE, 5)
    assert [(m.type, m.to, m.index) for m in rd.messages] == [
        (MT.APP_RESP, 1, 5),
        (MT.HEARTBEAT_RESP, 3, 0),
    ]
    persist(s, rd)
    n.advance(rd)
    assert n.status().applied == 5
    n.campaign()
    assert n.status().soft_state == SoftState(NONE, CANDIDATE)


def test_snapshot_for_other_configuration_is_ignored():
    n, _ = new_node(2, voters=(1, 2, 3))
    n.step(snap_message(voters=(1, 3)))
    rd = n.ready()
    assert rd.snapshot is None
    assert [(m.type, m.index) for m in rd.messages] == [(MT.APP_RESP, 0)]


def test_snapshot_of_entries_we_have_only_commits():
    n, s = new_node(2, voters=(1, 2, 3))
    n.step(Message(MT.APP, to=2, frm=1, term=1, entries=[Entry(1, i) for i in range(1, 6)]))
    handle(n, s)
    n.step(snap_message(index=4))
    rd = n.ready()
    assert rd.snapshot is None
    assert rd.hard_state.commit == 4
    assert [(m.type, m.index) for m in rd.messages] == [(MT.APP_RESP, 4)]
    n.step(snap_message(index=3))  # older than the commit: ignored
    assert [(m.type, m.index) for m in n.ready().messages] == [(MT.APP_RESP, 4)]


def test_unapplied_conf_change_blocks_campaign():
    n, s = new_node(2, voters=(1, 2, 3))
    cc = Entry(1, 2, EntryType.CONF_CHANGE, ConfChange(ConfChangeType.ADD_NODE, 4).encode())
    n.step(Message(MT.APP, to=2, frm=1, term=1, commit=2, entries=[Entry(1, 1), cc]))
    rd = n.ready()
    assert rd.committed_entries[-1] == cc
    persist(s, rd)
    n.campaign()  # committed but not applied yet
    assert n.status().soft_state == SoftState(1, FOLLOWER)
    n.advance(rd)
    n.campaign()
    assert n.status().soft_state == SoftState(NONE, CANDIDATE)


def test_single_node_pre_vote_campaign():
    n, s = new_node(pre_vote=True)
    n.campaign()
    rd = handle(n, s)
    assert rd.soft_state == SoftState(1, LEADER)
    assert rd.hard_state == HardState(1, 1, 0)


def test_pre_vote_cluster_election():
    c = Cluster(3, pre_vote=True)
    c.elect(2)
    assert [c.stores[i].hard_state for i in (1, 2, 3)] == [HardState(1, 2, 1)] * 3


def test_propose_batch():
    n, s = single_leader()
    n.propose_batch([b"a", b"b", b"c"])
    rd = handle(n, s)
    assert [(e.index, e.data) for e in rd.entries] == [(2, b"a"), (3, b"b"), (4, b"c")]
    assert [e.data for e in handle(n, s).committed_entries] == [b"a", b"b", b"c"]


def test_propose_batch_sends_one_append_per_follower():
    c = Cluster(3)
    leader = c.elect(1)
    leader.propose_batch([b"a", b"b"])
    apps = [m for m in leader.ready().messages if m.type == MT.APP]
    assert sorted(m.to for m in apps) == [2, 3]
    assert all([e.data for e in m.entries] == [b"a", b"b"] for m in apps)


def test_propose_batch_empty_is_rejected():
    n, _ = single_leader()
    with pytest.raises(ValueError):
        n.propose_batch([])


def test_propose_batch_without_leader_is_dropped():
    n, _ = new_node(1, voters=(1, 2, 3))
    assert isinstance(n.propose_batch([b"a"]), ProposalDropped)


def test_lease_based_read_index():
    c = Cluster(3, check_quorum=True, read_only_option=ReadOnlyOption.LEASE_BASED)
    leader = c.elect(1)
    leader.read_index(b"l")
    rd = leader.ready()
    assert rd.read_states == [ReadState(1, b"l")]
    assert rd.messages == []  # no heartbeat round needed
    c.nodes[2].read_index(b"f")
    (fwd,) = c.nodes[2].ready().messages
    leader.step(fwd)
    (resp,) = leader.ready().messages
    assert (resp.type, resp.to, resp.index, resp.context) == (MT.READ_INDEX_RESP, 2, 1, b"f")
    c.nodes[2].step(resp)
    assert c.nodes[2].ready().read_states == [ReadState(1, b"f")]


# -- leader transfer edge cases ---------------------------------------------------------


def test_transfer_leader_to_self_or_non_voter_is_ignored():
    c = Cluster(3)
    leader = c.elect(1)
    leader.apply_conf_change(ConfChange(ConfChangeType.ADD_LEARNER_NODE, 4))
    for target in (1, 4, 9):
        leader.transfer_leader(target)
        assert leader.status().lead_transferee == NONE
    assert not [m for m in leader.ready().messages if m.type == MT.TIMEOUT_NOW]


def test_transfer_leader_repeated_and_redirected():
    c = Cluster(3)
    leader = c.elect(1)
    c.cut.add(3)
    leader.propose(b"a")
    c.settle()
    leader.transfer_leader(3)
    assert leader.status().lead_transferee == 3
    leader.ready()
    leader.transfer_leader(3)  # already in progress: nothing new
    assert leader.ready().messages == []
    leader.transfer_leader(2)  # replaces the transfer to 3; 2 is up to date
    assert leader.status().lead_transferee == 2
    assert [(m.type, m.to) for m in leader.ready().messages] == [(MT.TIMEOUT_NOW, 2)]


def test_transfer_leader_times_out():
    c = Cluster(3, election_tick=5)
    leader = c.elect(1)
    c.cut.add(3)
    leader.propose(b"a")
    c.settle()
    leader.transfer_leader(3)
    for _ in range(4):
        leader.tick()
    assert leader.status().lead_transferee == 3
    leader.tick()  # one election timeout after the transfer began
    assert leader.status().lead_transferee == NONE
    assert leader.status().soft_state == SoftState(1, LEADER)
    leader.propose(b"b")  # accepted again


def test_removing_transferee_aborts_transfer():
    c = Cluster(3)
    leader = c.elect(1)
    c.cut.add(3)
    leader.propose(b"a")
    c.settle()
    leader.transfer_leader(3)
    leader.apply_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, 3))
    assert leader.status().lead_transferee == NONE
    leader.propose(b"b")


def test_follower_forwards_transfer_leader_with_requested_transferee():
    # etcd-raft: a follower forwards MsgTransferLeader to the leader with From
    # still naming the transferee, so the leader hands over to that node.
    c = Cluster(3)
    c.elect(1)
    c.nodes[2].transfer_leader(3)
    (fwd,) = c.nodes[2].ready().messages
    assert (fwd.type, fwd.to) == (MT.TRANSFER_LEADER, 1)
    assert fwd.frm == 3
    c.nodes[1].step(fwd)
    c.settle()
    assert c.nodes[3].raft.state == LEADER


def test_invalid_role_transitions_assert():
    n, _ = single_leader()
    with pytest.raises(AssertionError):
        n.raft.become_candidate()
    with pytest.raises(AssertionError):
        n.raft.become_pre_candidate()
    f, _ = new_node(1, voters=(1, 2, 3))
    with pytest.raises(AssertionError):
        f.raft.become_leader()


def test_check_quorum_step_down_is_reported_as_soft_state():
    c = Cluster(3, check_quorum=True, election_tick=5)
    leader = c.elect(1)
    c.cut.update({2, 3})
    for _ in range(9):
        leader.tick()
        leader.ready()
    assert leader.status().soft_state == SoftState(1, LEADER)
    leader.tick()  # second quorum check without hearing from anyone
    assert leader.has_ready()
    rd = leader.ready()
    assert rd.soft_state == SoftState(NONE, FOLLOWER)
    assert rd.hard_state is None
    assert rd.messages == [] and rd.entries == [] and not rd.must_sync
    assert not leader.has_ready()


def _single_leader(**config) -> tuple[RawNode, MemoryStorage]:
    storage = MemoryStorage(ConfState((1,)))
    node = RawNode(Config(1, **config), storage)
    node.campaign()
    _drain(node, storage)
    return node, storage


def _drain(node: RawNode, storage: MemoryStorage) -> list:
    committed = []
    while node.has_ready():
        rd = node.ready()
        storage.append(rd.entries)
        if rd.hard_state is not None:
            storage.set_hard_state(rd.hard_state)
        committed.extend(rd.committed_entries)
        node.advance(rd)
    return committed


def test_max_uncommitted_entries_size_drops_proposals_until_commit():
    node, storage = _single_leader(max_uncommitted_entries_size=10)
    node.propose(b"x" * 8)
    # 16 bytes would be waiting:
    assert isinstance(node.propose(b"y" * 8), ProposalDropped)
    assert [e.data for e in _drain(node, storage)] == [b"x" * 8]
    node.propose(b"z" * 8)  # committed entries no longer count
    assert [e.data for e in _drain(node, storage)] == [b"z" * 8]


def test_a_single_proposal_over_the_limit_is_still_accepted_when_nothing_waits():
    node, storage = _single_leader(max_uncommitted_entries_size=4)
    node.propose(b"x" * 100)
    assert [e.data for e in _drain(node, storage)] == [b"x" * 100]


def test_update_node_leaves_membership_alone():
    node, _ = _single_leader()
    cs = node.apply_conf_change(ConfChange(ConfChangeType.UPDATE_NODE, 1))
    assert cs == ConfState((1,), ())


def test_demoting_the_leader_to_learner_makes_it_step_down():
    storage = MemoryStorage(ConfState((1, 2)))
    node = RawNode(Config(1), storage)
    node.raft.become_candidate()
    node.raft.become_leader()
    cs = node.apply_conf_change(ConfChange(ConfChangeType.ADD_LEARNER_NODE, 1))
    assert cs == ConfState((2,), (1,))
    assert node.raft.state == StateType.FOLLOWER
    assert node.raft.is_learner


def test_enum_numbers_match_etcd_raft():
    assert [MessageType.HUP, MessageType.PRE_VOTE_RESP] == [0, 18]
    assert [ConfChangeType.ADD_NODE, ConfChangeType.ADD_LEARNER_NODE] == [0, 3]
    assert [SnapshotStatus.FINISH, SnapshotStatus.FAILURE] == [1, 2]
    assert [StateType.FOLLOWER, StateType.PRE_CANDIDATE] == [0, 3]


def test_pending_snapshot_names_an_accepted_snapshot_until_a_ready_hands_it_out():
    n, s = new_node(2, voters=(1, 2, 3))
    offered = snap_message()
    n.step(offered)
    assert n.pending_snapshot() is offered.snapshot
    rd = n.ready()
    persist(s, rd)
    n.advance(rd)
    assert n.pending_snapshot() is None
    n.step(snap_message(voters=(1, 3)))  # not for this configuration: not taken
    assert n.pending_snapshot() is None


def test_an_unchanged_ready_field_is_none_or_empty():
    n, s = single_leader()
    n.propose(b"x")
    rd = n.ready()
    assert rd.soft_state is None and rd.snapshot is None
    assert rd.entries and rd.hard_state is None  # the commit moves only once persisted
    persist(s, rd)
    n.advance(rd)
    rd = n.ready()
    assert rd.hard_state is not None and rd.hard_state.commit == rd.committed_entries[-1].index


def test_basic_status_is_what_the_store_reads():
    n, _ = single_leader()
    st = n.basic_status()
    assert st.is_leader and st.soft_state == SoftState(1, LEADER)
    assert st.last_index == st.applied == st.hard_state.commit == 1
    assert st.pending_conf_index == 0 and st.lead_transferee == NONE
    n.propose_conf_change(ConfChange(ConfChangeType.ADD_LEARNER_NODE, 2))
    assert n.basic_status().pending_conf_index == n.basic_status().last_index == 2
    full = n.status()
    assert full.conf_state == ConfState((1,), ()) and set(full.progress) == {1}


def test_lease_read_index_is_the_commit_once_the_leader_committed_in_its_term() -> None:
    net = Network((1, 2, 3))
    net.campaign(1)
    net.process_readies()
    for i in (2, 3):
        net.deliver(Message(MessageType.VOTE_RESP, to=1, frm=i, term=1))
    assert net.state(1) == StateType.LEADER
    assert net.raw(1).lease_read_index() == 0, "its first entry is not committed yet"
    net.stabilize()
    assert net.raw(1).lease_read_index() == net.raw(1).raft.raft_log.committed > 0
    assert net.raw(2).lease_read_index() == 0, "followers have no lease"


def test_committing_while_a_leader_has_entries_not_yet_committed():
    c = Cluster(3)
    leader = c.elect(1)
    assert not leader.committing()
    leader.propose(b"x")
    assert leader.committing()  # appended, not yet acknowledged by a quorum
    c.settle()
    assert not leader.committing()
    follower = c.nodes[2]
    c.cut = {3}
    leader.propose(b"y")
    rd = leader.ready()  # persisted by the leader, the appends not yet delivered
    persist(c.stores[1], rd)
    leader.advance(rd)
    assert leader.committing() and not follower.committing()  # only a leader holds
    for m in rd.messages:
        if m.to == 2:
            follower.step(m)
    c.settle()
    assert not leader.committing()  # 2 of 3 is a quorum
