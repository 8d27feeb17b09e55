"""Randomized schedules: ticks, proposals, reads, message loss, delay, duplication and
reordering, partitions, crashes and restarts, and log compaction, with Raft's safety
properties checked after every step and liveness checked at the end.

A failure names its seed; replay one schedule with `PYTHONPATH=. python -c
"from tests.raft.test_randomized import run_schedule; run_schedule(SEED, NODES)"`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from multiraft.raft import Entry, MemoryStorage, ReadOnlyOption, StateType
from tests.raft.network import Network

STEPS = {3: 400, 5: 300}
SCHEDULES = {3: 600, 5: 400}
CHUNK = 25
ELECTION_TICK = 10


def persisted_log(storage: MemoryStorage) -> list[Entry]:
    first, last = storage.first_index(), storage.last_index()
    return storage.entries(first, last + 1, 1 << 62) if last >= first else []


@dataclass
class Committed:
    term: int
    data: bytes
    seen_at_term: int  # the highest term any node had when the commit was first seen


@dataclass
class SafetyChecker:
    net: Network
    leaders: dict[int, int] = field(default_factory=dict)  # term -> leader
    entries: dict[tuple[int, int], tuple] = field(default_factory=dict)  # (index, term) -> ...
    committed: dict[int, Committed] = field(default_factory=dict)
    commit_floor: dict[int, int] = field(default_factory=dict)
    applied_floor: dict[int, int] = field(default_factory=dict)
    applied: list[bytes] = field(default_factory=list)  # longest applied sequence seen
    reads: dict[bytes, int] = field(default_factory=dict)  # ctx -> commit index at request

    def check(self) -> None:
        self.election_safety()
        self.log_matching()
        self.commits_are_durable()
        self.leader_completeness()
        self.state_machine_safety()
        self.read_safety()

    def max_term(self) -> int:
        live = [self.net.raw(i).raft.term for i in self.net.alive()]
        return max(live + [n.storage.hard_state.term for n in self.net.nodes.values()])

    def election_safety(self) -> None:
        for i in self.net.alive():
            r = self.net.raw(i).raft
            if r.state == StateType.LEADER:
                other = self.leaders.setdefault(r.term, i)
                assert other == i, f"two leaders in term {r.term}: {other} and {i}"

    def log_matching(self) -> None:
        """An entry (index, term) always has the same content and the same predecessor
        term, on every node and at every time: with induction, that is Log Matching."""
        for i, n in self.net.nodes.items():
            if n.raw is not None:
                log = n.raw.raft.raft_log
                ents, term_of = log.all_entries(), log.term
            else:
                ents, term_of = persisted_log(n.storage), n.storage.term
            prev = term_of(ents[0].index - 1) if ents else 0
            for e in ents:
                val = (prev, e.type, e.data)
                old = self.entries.setdefault((e.index, e.term), val)
                assert old == val, f"node {i}: entry {e} differs from another copy {old}"
                prev = e.term

    def commits_are_durable(self) -> None:
        max_term = self.max_term()
        for i, n in self.net.nodes.items():
            commit = n.storage.hard_state.commit
            floor = self.commit_floor.get(i, 0)
            assert commit >= floor, f"node {i}: persisted commit went back {floor} -> {commit}"
            assert commit <= n.storage.last_index(), f"node {i}: commit {commit} not persisted"
            if n.raw is not None:
                assert n.raw.raft.raft_log.committed >= commit
            for index in range(max(floor + 1, n.storage.first_index()), commit + 1):
                e = n.storage.entries(index, index + 1, 1 << 62)[0]
                c = self.committed.setdefault(index, Committed(e.term, e.data, max_term))
                assert (c.term, c.data) == (e.term, e.data), f"node {i}: committed {index} changed"
            self.commit_floor[i] = commit

    def leader_completeness(self) -> None:
        for i in self.net.alive():
            r = self.net.raw(i).raft
            if r.state != StateType.LEADER:
                continue
            log = r.raft_log
            for index, c in self.committed.items():
                if r.term > c.seen_at_term and index >= log.first_index():
                    assert log.term(index) == c.term, (
                        f"leader {i} of term {r.term} lacks committed entry {index}@{c.term}"
                    )

    def state_machine_safety(self) -> None:
        for i, n in self.net.nodes.items():
            assert n.sm.applied >= self.applied_floor.get(i, 0), f"node {i} un-applied entries"
            self.applied_floor[i] = n.sm.applied
            data, seen = n.sm.data, self.applied
            common = min(len(data), len(seen))
            assert data[:common] == seen[:common], f"node {i} applied a different sequence"
            if len(data) > len(seen):
                seen.extend(data[len(seen) :])

    def read_index(self, node_id: int, ctx: bytes) -> None:
        self.reads[ctx] = max(n.storage.hard_state.commit for n in self.net.nodes.values())
        self.net.raw(node_id).read_index(ctx)

    def read_safety(self) -> None:
        """A read index covers everything committed before the read was asked for."""
        for i, n in self.net.nodes.items():
            for rs in n.read_states:
                floor = self.reads[rs.request_ctx]
                assert rs.index >= floor, f"node {i}: read {rs} misses commit {floor}"
            n.read_states.clear()


Action = Callable[[], None]


def some_node(net: Network, rng: random.Random, alive: bool = True) -> int | None:
    ids = net.alive() if alive else [i for i in net.nodes if i not in net.alive()]
    return rng.choice(ids) if ids else None


class Schedule:
    def __init__(self, seed: int, size: int) -> None:
        self.rng = rng = random.Random(seed)
        self.seed = seed
        config = {
            "election_tick": ELECTION_TICK,
            "pre_vote": rng.random() < 0.5,
            "check_quorum": rng.random() < 0.5,
            "max_inflight_msgs": rng.choice([1, 4, 256]),
            "max_size_per_msg": rng.choice([1, 100, 1 << 20]),
            "read_only_option": ReadOnlyOption.SAFE,
            "broadcast_commit": rng.random() < 0.5,
            "beat_idle_followers_only": rng.random() < 0.5,
        }
        self.net = net = Network(range(1, size + 1), seed=seed, **config)
        net.max_delay = rng.choice([0, 0, 1, 3])
        net.dup_rate = rng.choice([0.0, 0.0, 0.05])
        net.reorder = rng.random() < 0.3
        net.drop_rate = rng.choice([0.0, 0.05, 0.2])
        net.report_unreachable = rng.random() < 0.5
        self.checker = SafetyChecker(net)
        self.counter = 0
        self.actions: list[tuple[Action, int]] = [
            (self.tick_all, 30),
            (self.tick_one, 10),
            (self.propose, 20),
            (self.propose_then_crash, 1),
            (self.read, 5),
            (self.partition, 2),
            (self.heal, 3),
            (self.crash, 2),
            (self.restart, 5),
            (self.compact, 2),
            (self.nothing, 20),
        ]

    def fresh(self, prefix: str) -> bytes:
        self.counter += 1
        return b"%s-%d-%d" % (prefix.encode(), self.seed, self.counter)

    # -- actions -------------------------------------------------------------------

    def tick_all(self) -> None:
        for i in self.net.alive():
            self.net.raw(i).tick()

    def tick_one(self) -> None:
        i = some_node(self.net, self.rng)
        if i is not None:
            self.net.raw(i).tick()

    def propose(self) -> None:
        i = some_node(self.net, self.rng)
        if i is not None:
            self.net.propose(i, self.fresh("p"))

    def propose_then_crash(self) -> None:
        """The proposal is still unstable (not persisted) when the node dies."""
        i = self.net.leader()
        if i is not None:
            self.net.propose(i, self.fresh("p"))
            self.net.crash(i)

    def read(self) -> None:
        i = some_node(self.net, self.rng)
        if i is not None:
            self.checker.read_index(i, self.fresh("r"))

    def partition(self) -> None:
        ids = list(self.net.nodes)
        self.rng.shuffle(ids)
        cut = self.rng.randint(1, len(ids) - 1)
        self.net.partition(ids[:cut], ids[cut:])

    def heal(self) -> None:
        self.net.heal()

    def crash(self) -> None:
        i = some_node(self.net, self.rng)
        if i is not None:
            self.net.crash(i)

    def restart(self) -> None:
        i = some_node(self.net, self.rng, alive=False)
        if i is not None:
            self.net.restart(i)

    def compact(self) -> None:
        i = some_node(self.net, self.rng)
        if i is not None:
            self.net.compact(i, keep=self.rng.randint(0, 3))

    def nothing(self) -> None:
        pass

    # -- running -------------------------------------------------------------------

    def run(self, steps: int) -> None:
        actions = [a for a, _ in self.actions]
        weights = [w for _, w in self.actions]
        for _ in range(steps):
            self.rng.choices(actions, weights)[0]()
            self.net.step()
            self.checker.check()
        self.check_liveness()

    def check_liveness(self) -> None:
        net = self.net
        net.heal()
        net.filters.clear()
        net.drop_rate, net.dup_rate, net.max_delay, net.reorder = 0.0, 0.0, 0, False
        for i in net.nodes:
            if not net.nodes[i].alive:
                net.restart(i)
        acknowledged = list(self.checker.applied)
        net.wait_leader(max_ticks=50 * ELECTION_TICK)
        self.checker.check()
        data = self.fresh("final")
        for _ in range(50 * ELECTION_TICK):
            lead = net.leader()
            if lead is not None and data not in self.log_of(lead):
                net.propose(lead, data)  # again if a leader change lost it
            net.tick_all()
            self.checker.check()
            # Equal, not just holding `data`: a lazily broadcast commit
            # reaches followers a heartbeat after the leader applied.
            if all(data in net.applied(i) for i in net.nodes) and self.converged():
                break
        for i in net.nodes:
            applied = net.applied(i)
            assert applied[: len(acknowledged)] == acknowledged, f"node {i} lost applied entries"
            assert data in applied, f"node {i} did not apply the final proposal"
            assert applied == self.checker.applied, f"node {i} applied a different sequence"

    def converged(self) -> bool:
        first, *rest = (self.net.applied(i) for i in self.net.nodes)
        return all(a == first for a in rest)

    def log_of(self, node_id: int) -> list[bytes]:
        return [e.data for e in self.net.raw(node_id).raft.raft_log.all_entries()]


def run_schedule(seed: int, size: int) -> None:
    schedule = Schedule(seed, size)
    try:
        schedule.run(STEPS[size])
    except AssertionError as e:
        raise AssertionError(f"schedule seed={seed} nodes={size}: {e}") from e


CASES = [
    (size, start)
    for size, count in SCHEDULES.items()
    for start in range(size * 100_000, size * 100_000 + count, CHUNK)
]


@pytest.mark.parametrize(("size", "start"), CASES, ids=[f"n{s}-seeds{b}" for s, b in CASES])
def test_random_schedules_are_safe_and_live(size: int, start: int) -> None:
    for seed in range(start, start + CHUNK):
        run_schedule(seed, size)
