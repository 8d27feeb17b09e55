"""The store's turn with three real stores in one process, stepped in
lockstep by hand: what a turn proposes, and when."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from multiraft.protocol import wire
from multiraft.raft import EntryType
from multiraft.security.trust import PLAIN
from multiraft.store.commands import decode_entry
from multiraft.store.config import StoreConfig
from multiraft.store.operation.write import HOLD_BYTES
from multiraft.store.store import Store

CLIENT = b"client"
REGION = 1


class Lockstep:
    """Three stores; a step turns each once, committing its batch, and
    delivers what it sent at the next step (unless held back)."""

    def __init__(self, root: Path) -> None:
        self.now = 1000.0
        members = {i: f"127.0.0.1:{21000 + i}" for i in (1, 2, 3)}
        self.stores = {
            sid: Store(StoreConfig(sid, addr, str(root / f"s{sid}"), members, sync=False), self.now)
            for sid, addr in members.items()
        }
        self.inbox: dict[int, list[tuple[bytes, bytes, object]]] = {s: [] for s in members}
        self.replies: list[wire.Reply] = []

    def step(self, deliver: bool = True) -> None:
        """Each store turns once; with `deliver` false, what they send
        between them is kept back until the next step that delivers."""
        sent: list[tuple[int, bytes, bytes]] = []
        for sid, store in self.stores.items():
            inbox: list[tuple[bytes, bytes, object]] = []
            held: list[tuple[bytes, bytes, object]] = []
            for m in self.inbox[sid]:
                (inbox if deliver or m[0] == CLIENT else held).append(m)
            self.inbox[sid] = held
            out = store.turn(inbox, self.now)
            out.batch.commit()
            done = store.advance()
            for to, frame in out.early + out.late + done.frames:
                sent.append((to, frame, b"store-%d" % sid))
            for _, frame in out.replies + done.replies:
                msg = wire.decode_client_frame(frame)
                self.replies += msg.replies if isinstance(msg, wire.ReplyBatch) else [msg]
        for to, frame, identity in sent:
            self.inbox[to].append((identity, frame, PLAIN))
        self.now += 0.01

    def leader(self) -> Store | None:
        for store in self.stores.values():
            peer = store.peers.get(REGION)
            if peer is not None and peer.is_leader() and peer.raw_node.lease_read_index():
                return store
        return None

    def put(self, store: Store, request_id: int, key: bytes, value: bytes = b"v") -> None:
        region = store.peers[REGION].region
        args = {"region": REGION, "epoch": region.epoch.to_wire(), "key": key}
        args |= {"value": value, "client": 7, "seq": request_id, "acked": 0}
        frame = wire.encode_request(wire.Request(request_id, "put", args))
        self.inbox[store.ctx.store_id].append((CLIENT, frame, PLAIN))

    def close(self) -> None:
        for store in self.stores.values():
            store.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Lockstep]:
    c = Lockstep(tmp_path)
    try:
        yield c
    finally:
        c.close()


def written_keys(store: Store, after: int) -> list[list[bytes]]:
    """The keys each normal entry after index `after` writes, entry by entry."""
    storage = store.peers[REGION].storage
    entries = storage.entries(after + 1, storage.last_index() + 1, 1 << 30)
    return [
        [c.key for c in decode_entry(e.data)[1]]
        for e in entries
        if e.type == EntryType.NORMAL and e.data
    ]


def elect(cluster: Lockstep) -> Store:
    for _ in range(200):
        if cluster.leader() is not None:
            break
        cluster.step()
    leader = cluster.leader()
    assert leader is not None
    return leader


def test_writes_wait_for_the_entry_in_flight_and_then_go_as_one(cluster: Lockstep) -> None:
    leader = elect(cluster)
    before = leader.peers[REGION].storage.last_index()
    cluster.put(leader, 1, b"a")
    cluster.step(deliver=False)  # proposed; its appends held back
    assert written_keys(leader, before) == [[b"a"]]
    cluster.put(leader, 2, b"b")
    cluster.step(deliver=False)
    cluster.put(leader, 3, b"c")
    cluster.step(deliver=False)
    assert written_keys(leader, before) == [[b"a"]]  # b and c wait for a's commit
    for _ in range(20):
        if len(cluster.replies) == 3:
            break
        cluster.step()
    assert sorted((r.request_id, r.ok) for r in cluster.replies) == [(i, True) for i in (1, 2, 3)]
    assert written_keys(leader, before) == [[b"a"], [b"b", b"c"]]
    for store in cluster.stores.values():  # every replica holds the same log
        assert written_keys(store, before) == [[b"a"], [b"b", b"c"]]


def test_writes_of_many_bytes_do_not_wait(cluster: Lockstep) -> None:
    leader = elect(cluster)
    before = leader.peers[REGION].storage.last_index()
    cluster.put(leader, 1, b"a")
    cluster.step(deliver=False)
    big = b"x" * (HOLD_BYTES // 2 + 1)
    cluster.put(leader, 2, b"b", big)
    cluster.step(deliver=False)
    assert written_keys(leader, before) == [[b"a"]]  # held: under the limit
    cluster.put(leader, 3, b"c", big)
    cluster.step(deliver=False)
    # Over the limit: proposed while a's entry is still in flight, so no
    # entry grows past what a frame may carry.
    assert written_keys(leader, before) == [[b"a"], [b"b", b"c"]]
    for _ in range(20):
        if len(cluster.replies) == 3:
            break
        cluster.step()
    assert sorted((r.request_id, r.ok) for r in cluster.replies) == [(i, True) for i in (1, 2, 3)]
