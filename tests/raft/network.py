"""A deterministic simulated network of Raft nodes for scenario and randomized tests.

Every node is a `RawNode` over a `MemoryStorage` plus a tiny state machine (the
list of applied normal-entry data, the conf state and the applied index), which
is treated as persisted together with the storage, as the real store does.
Time is logical: `step()` advances the network clock by one and delivers the
messages due; `tick_all()` advances the nodes' Raft clocks. All randomness comes
from one seeded `random.Random`; there are no threads and no wall clock.

Ready handling follows the contract of `RawNode.ready()`: snapshot, then
entries, then HardState are persisted; then messages are sent; then committed
entries are applied; then `advance()`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from multiraft.raft import (
    ConfChange,
    Config,
    ConfState,
    Entry,
    EntryType,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    RawNode,
    ReadState,
    Snapshot,
    SnapshotMetadata,
    SnapshotStatus,
    StateType,
)

MessageFilter = Callable[[Message], bool]
"""Returns False to drop the message."""


@dataclass
class StateMachine:
    """What a node has applied; persisted atomically with the applied index."""

    applied: int = 0
    data: list[bytes] = field(default_factory=list)
    conf_state: ConfState = field(default_factory=ConfState)

    def encode(self) -> bytes:
        return msgpack.packb([self.applied, self.data])

    @staticmethod
    def from_snapshot(snap: Snapshot) -> StateMachine:
        applied, data = msgpack.unpackb(snap.data) if snap.data else (snap.metadata.index, [])
        assert applied == snap.metadata.index, f"snapshot data at {applied} != {snap.metadata}"
        return StateMachine(applied, list(data), snap.metadata.conf_state)


@dataclass
class SimNode:
    id: int
    storage: MemoryStorage
    sm: StateMachine
    config: dict[str, Any]
    raw: RawNode | None = None
    read_states: list[ReadState] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.raw is not None


@dataclass(order=True)
class InFlight:
    at: int
    seq: int
    msg: Message = field(compare=False)


def copy_message(m: Message) -> Message:
    return dataclasses.replace(m, entries=list(m.entries))


def bootstrapped_storage(
    voters: Iterable[int], learners: Iterable[int] = (), index: int = 0, term: int = 0
) -> MemoryStorage:
    """Storage of a group created with this membership, its log starting after `index`."""
    cs = ConfState(tuple(sorted(voters)), tuple(sorted(learners)))
    if index == 0:
        return MemoryStorage(cs)
    storage = MemoryStorage()
    sm = StateMachine(index, [], cs)
    storage.apply_snapshot(Snapshot(sm.encode(), SnapshotMetadata(cs, index, term)))
    storage.set_hard_state(HardState(term=term, commit=index))
    return storage


def storage_with_log(
    voters: Iterable[int], terms: list[int], term: int | None = None, commit: int = 0
) -> MemoryStorage:
    """Storage whose log holds one entry per element of `terms` (entry i+1 has term
    terms[i] and data naming both), with HardState(term or the last term, commit)."""
    storage = MemoryStorage(ConfState(tuple(sorted(voters))))
    storage.append([Entry(t, i + 1, data=b"t%d-i%d" % (t, i + 1)) for i, t in enumerate(terms)])
    last_term = terms[-1] if terms else 0
    storage.set_hard_state(HardState(term=term if term is not None else last_term, commit=commit))
    return storage


class Network:
    def __init__(
        self,
        voters: Iterable[int] = (1, 2, 3),
        *,
        learners: Iterable[int] = (),
        seed: int = 0,
        boot_index: int = 0,
        storages: dict[int, MemoryStorage] | None = None,
        **config: Any,
    ) -> None:
        """`config`: Config keyword arguments shared by every node (ids and seeds differ);
        `storages`: prepared storages of some nodes (the others are bootstrapped)."""
        self.rng = random.Random(seed)
        self.config = {"election_tick": 10, "heartbeat_tick": 1, **config}
        self.nodes: dict[int, SimNode] = {}
        self.in_flight: list[InFlight] = []
        self.sent: list[Message] = []  # everything handed to the network, in order
        self.now = 0
        self._seq = 0
        # Fault injection.
        self.cut: set[tuple[int, int]] = set()  # (frm, to) links that lose everything
        self.drop_rate = 0.0
        self.link_drop: dict[tuple[int, int], float] = {}
        self.dup_rate = 0.0
        self.max_delay = 0  # extra steps, drawn uniformly from [0, max_delay]
        self.reorder = False
        self.filters: list[MessageFilter] = []
        self.auto_report_snapshot = True
        self.report_unreachable = False
        voters, learners = list(voters), list(learners)
        storages = storages or {}
        for i in voters + learners:
            storage = storages.get(i) or bootstrapped_storage(
                voters, learners, boot_index, boot_index
            )
            self.add_node(i, storage)

    # -- membership of the simulation ------------------------------------------

    def add_node(self, node_id: int, storage: MemoryStorage | None = None, **config: Any) -> None:
        """Start a node; by default with an empty storage (it learns the group by snapshot)."""
        storage = storage if storage is not None else MemoryStorage()
        snap = storage.snapshot()
        sm = StateMachine.from_snapshot(snap)
        self.nodes[node_id] = SimNode(node_id, storage, sm, {**self.config, **config})
        self.restart(node_id)

    def remove_node(self, node_id: int) -> None:
        self.crash(node_id)
        del self.nodes[node_id]

    def crash(self, node_id: int) -> None:
        """Lose all volatile state of the node and the messages on their way to it."""
        self.nodes[node_id].raw = None
        lost = [f.msg for f in self.in_flight if f.msg.to == node_id]
        self.in_flight = [f for f in self.in_flight if f.msg.to != node_id]
        for m in lost:
            if m.type == MessageType.SNAP:
                self._report_snapshot(m, SnapshotStatus.FAILURE)

    def restart(self, node_id: int) -> None:
        n = self.nodes[node_id]
        assert n.raw is None, f"{node_id} is running"
        cfg = {"seed": node_id * 7919 + self.rng.randrange(1 << 30), **n.config}
        n.raw = RawNode(Config(id=node_id, **{**cfg, "applied": n.sm.applied}), n.storage)

    def compact(self, node_id: int, keep: int = 0) -> None:
        """Snapshot the node's state machine at its applied index; compact the log
        up to `keep` entries before it."""
        n = self.nodes[node_id]
        if n.sm.applied <= n.storage.snapshot().metadata.index:
            return
        n.storage.create_snapshot(n.sm.applied, n.sm.conf_state, n.sm.encode())
        upto = n.sm.applied - keep
        if upto >= n.storage.first_index():
            n.storage.compact(upto)

    # -- accessors ----------------------------------------------------------------

    def raw(self, node_id: int) -> RawNode:
        raw = self.nodes[node_id].raw
        assert raw is not None, f"node {node_id} is down"
        return raw

    def alive(self) -> list[int]:
        return sorted(i for i, n in self.nodes.items() if n.alive)

    def leader(self) -> int | None:
        """The live leader of the highest term, if any."""
        best: tuple[int, int] | None = None
        for i in self.alive():
            r = self.raw(i).raft
            if r.state == StateType.LEADER and (best is None or r.term > best[0]):
                best = (r.term, i)
        return None if best is None else best[1]

    def applied(self, node_id: int) -> list[bytes]:
        return self.nodes[node_id].sm.data

    def state(self, node_id: int) -> StateType:
        return self.raw(node_id).raft.state

    def term(self, node_id: int) -> int:
        return self.raw(node_id).raft.term

    # -- inputs --------------------------------------------------------------------

    def propose(self, node_id: int, data: bytes) -> bool:
        """Propose at a node; False if the proposal was dropped at once."""
        return self.raw(node_id).propose(data) is None

    def propose_conf_change(self, node_id: int, cc: ConfChange) -> bool:
        return self.raw(node_id).propose_conf_change(cc) is None

    def campaign(self, node_id: int) -> None:
        self.raw(node_id).campaign()

    def elect(self, node_id: int, max_steps: int = 200) -> None:
        """Make `node_id` campaign and deliver until the cluster is quiet; it must win."""
        self.campaign(node_id)
        self.stabilize(max_steps)
        assert self.state(node_id) == StateType.LEADER, f"{node_id} did not win"

    def tick(self, node_id: int, n: int = 1) -> None:
        for _ in range(n):
            self.raw(node_id).tick()
        self.process_readies()

    def tick_all(self, n: int = 1, stabilize: bool = True) -> None:
        """`n` rounds of: tick every live node, then (optionally) deliver until quiet."""
        for _ in range(n):
            for i in self.alive():
                self.raw(i).tick()
            self.process_readies()
            if stabilize:
                self.stabilize()

    def wait_leader(self, max_ticks: int = 500) -> int:
        for _ in range(max_ticks):
            lead = self.leader()
            if lead is not None:
                return lead
            self.tick_all()
        raise AssertionError(f"no leader after {max_ticks} ticks")

    # -- faults ----------------------------------------------------------------------

    def partition(self, *groups: Iterable[int]) -> None:
        """Cut every link between different groups; nodes in no group are isolated."""
        self.heal()
        side = {i: g for g, members in enumerate(groups) for i in members}
        for a in self.nodes:
            for b in self.nodes:
                if a != b and (a not in side or b not in side or side[a] != side[b]):
                    self.cut.add((a, b))

    def isolate(self, node_id: int) -> None:
        for other in self.nodes:
            if other != node_id:
                self.cut |= {(node_id, other), (other, node_id)}

    def heal(self) -> None:
        self.cut.clear()

    def intercept(self, pred: MessageFilter) -> list[Message]:
        """Take every future message matching `pred` off the network; the returned
        list collects them (re-inject with `send`)."""
        taken: list[Message] = []

        def keep(m: Message) -> bool:
            if pred(m):
                taken.append(m)
                return False
            return True

        self.filters.append(keep)
        return taken

    def take(self, pred: MessageFilter = lambda m: True) -> list[Message]:
        """Remove and return the in-flight messages matching `pred`, in send order."""
        taken = sorted(f for f in self.in_flight if pred(f.msg))
        self.in_flight = [f for f in self.in_flight if not pred(f.msg)]
        return [f.msg for f in taken]

    # -- the network ---------------------------------------------------------------------

    def send(self, msgs: Iterable[Message]) -> None:
        for m in msgs:
            m = copy_message(m)
            self.sent.append(m)
            if not self._passes(m):
                if m.type == MessageType.SNAP:
                    self._report_snapshot(m, SnapshotStatus.FAILURE)
                elif self.report_unreachable and (m.frm, m.to) in self.cut:
                    sender = self.nodes[m.frm].raw
                    if sender is not None:
                        sender.report_unreachable(m.to)
                continue
            copies = 2 if self.dup_rate and self.rng.random() < self.dup_rate else 1
            for _ in range(copies):
                delay = self.rng.randint(0, self.max_delay) if self.max_delay else 0
                self._seq += 1
                self.in_flight.append(InFlight(self.now + 1 + delay, self._seq, copy_message(m)))

    def _passes(self, m: Message) -> bool:
        if (m.frm, m.to) in self.cut or not all(f(m) for f in self.filters):
            return False
        rate = self.link_drop.get((m.frm, m.to), self.drop_rate)
        return not (rate and self.rng.random() < rate)

    def _report_snapshot(self, m: Message, status: SnapshotStatus) -> None:
        sender = self.nodes.get(m.frm)
        if self.auto_report_snapshot and sender is not None and sender.raw is not None:
            sender.raw.report_snapshot(m.to, status)

    def deliver(self, m: Message) -> None:
        """Step one message into its destination (if it is up)."""
        dest = self.nodes.get(m.to)
        if dest is None or dest.raw is None:
            if m.type == MessageType.SNAP:
                self._report_snapshot(m, SnapshotStatus.FAILURE)
            return
        # A forwarded proposal may hit a node without a leader, a response
        # may be stale: both come back as errors, which the network ignores.
        dest.raw.step(m)
        if m.type == MessageType.SNAP:
            self._report_snapshot(m, SnapshotStatus.FINISH)

    def step(self) -> int:
        """Advance the network clock by one and deliver what is due; returns that count."""
        self.process_readies()
        self.now += 1
        due = [f for f in self.in_flight if f.at <= self.now]
        if not due:
            return 0
        self.in_flight = [f for f in self.in_flight if f.at > self.now]
        due.sort()
        if self.reorder:
            self.rng.shuffle(due)
        for f in due:
            self.deliver(f.msg)
        self.process_readies()
        return len(due)

    def stabilize(self, max_steps: int = 1000) -> int:
        """Deliver until no message is in flight; returns the number of steps taken."""
        self.process_readies()
        for steps in range(max_steps):
            if not self.in_flight:
                return steps
            self.step()
        raise AssertionError(f"network not quiet after {max_steps} steps")

    # -- Ready handling --------------------------------------------------------------------

    def process_readies(self, max_rounds: int = 100) -> None:
        for _ in range(max_rounds):
            if not any(self.handle_ready(i) for i in self.alive()):
                return
        raise AssertionError(f"nodes still have a Ready after {max_rounds} rounds")

    def handle_ready(self, node_id: int) -> bool:
        n = self.nodes[node_id]
        raw = n.raw
        if raw is None or not raw.has_ready():
            return False
        rd = raw.ready()
        if rd.snapshot is not None:
            n.storage.apply_snapshot(rd.snapshot)
            n.sm = StateMachine.from_snapshot(rd.snapshot)
        n.storage.append(rd.entries)
        if rd.hard_state is not None:
            n.storage.set_hard_state(rd.hard_state)
        n.read_states.extend(rd.read_states)
        self.send(rd.messages)
        for e in rd.committed_entries:
            self._apply(n, raw, e)
        raw.advance(rd)
        return True

    @staticmethod
    def _apply(n: SimNode, raw: RawNode, e: Entry) -> None:
        assert e.index == n.sm.applied + 1, f"{n.id}: applying {e.index} after {n.sm.applied}"
        assert e.index <= n.storage.hard_state.commit, f"{n.id}: applying uncommitted {e}"
        if e.type == EntryType.CONF_CHANGE:
            n.sm.conf_state = raw.apply_conf_change(ConfChange.decode(e.data))
        elif e.data:
            n.sm.data.append(e.data)
        n.sm.applied = e.index
