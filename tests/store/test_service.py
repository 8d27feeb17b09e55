"""The KV service and the turn, driven by hand: requests go in as frames,
answers come out of the turn; no sockets, no wall clock (the driver moves
the store's clock from tick to tick)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from multiraft.errors import EpochNotMatch
from multiraft.protocol import wire
from multiraft.protocol.limits import MAX_KEY_SIZE, MAX_VALUE_SIZE
from multiraft.protocol.region import Region
from multiraft.protocol.wire import Reply, Request
from multiraft.raft import Message, MessageType
from multiraft.security.trust import PLAIN, Principal
from multiraft.store.commands import ReadOp
from multiraft.store.config import StoreConfig
from multiraft.store.operation import read, ready, write
from multiraft.store.store import Store
from multiraft.transport import codec

MAX_TURNS = 2000
"""Bound on every loop that drives the store (each turn takes well under 1 ms)."""
START = 1000.0
"""The simulated clock's reading when a store starts."""


def config(tmp_path: Path, addr: str = "127.0.0.1:20000") -> StoreConfig:
    return StoreConfig(
        store_id=1,
        addr=addr,
        data_dir=str(tmp_path / "s1"),
        initial_cluster={1: addr},
        replicas=1,
        tick_interval=0.01,
        sync=False,
    )


class Driver:
    """Drives a Store's turns by hand on a simulated clock; answers are decoded."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.now = store.ctx.now
        self.inbox: list[tuple[bytes, bytes, Principal]] = []
        self.replies: dict[int, Reply] = {}
        self._next_id = 0

    def turn(self, tick: bool = False) -> None:
        if tick:
            self.now = max(self.now, self.store.next_tick)
        inbox, self.inbox = self.inbox, []
        out = self.store.turn(inbox, self.now)
        frames = list(out.replies)
        out.batch.commit()
        frames += self.store.advance().replies
        for _identity, frame in frames:
            msg = wire.decode_client_frame(frame)
            for rep in msg.replies if isinstance(msg, wire.ReplyBatch) else [msg]:
                assert isinstance(rep, Reply)
                assert rep.request_id not in self.replies, "answered twice"
                self.replies[rep.request_id] = rep

    def until(self, cond: Any, tick: bool = False) -> None:
        for _ in range(MAX_TURNS):
            if cond():
                return
            self.turn(tick)
        raise AssertionError("the store did not get there")

    def lead(self) -> None:
        """Tick until every region is led here and has applied all it has."""

        def settled() -> bool:
            return all(
                p.is_leader() and p.applied == p.status().last_index
                for p in self.store.peers.values()
            )

        self.until(settled, tick=True)

    def send(self, op: str, args: dict) -> int:
        self._next_id += 1
        rid = self._next_id
        self.inbox.append((b"client", wire.encode_request(Request(rid, op, args)), PLAIN))
        return rid

    def call(self, op: str, args: dict) -> Reply:
        rid = self.send(op, args)
        self.until(lambda: rid in self.replies)
        return self.replies[rid]


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Driver]:
    store = Store(config(tmp_path), START)
    try:
        yield Driver(store)
    finally:
        store.close()


@pytest.fixture
def leader(driver: Driver) -> Driver:
    driver.lead()
    return driver


_seq = iter(range(1, 1_000_000))


def write_args(key: Any = b"k", region: Any = 1, epoch: Any = (1, 1), **kw: Any) -> dict:
    args = {"region": region, "epoch": list(epoch), "key": key, "client": 1, "acked": 0}
    args["seq"] = next(_seq)
    args.update(kw)
    return args


def read_args(region: Any = 1, epoch: Any = (1, 1), **kw: Any) -> dict:
    return {"region": region, "epoch": list(epoch), **kw}


def error_kind(rep: Reply) -> str:
    assert not rep.ok, rep
    kind, message, detail = rep.result
    assert isinstance(message, str) and isinstance(detail, dict)
    return kind


def test_not_leader_before_an_election(driver: Driver) -> None:
    for op, args in [
        ("put", write_args(value=b"v")),
        ("get", read_args(key=b"k")),
        ("scan", read_args(start=b"", end=b"")),
    ]:
        rep = driver.call(op, args)
        assert error_kind(rep) == "NotLeader"
        detail = rep.result[2]
        assert detail["leader"] is None
        assert Region.from_wire(detail["region"]).id == 1


def test_transfer_leader_to_itself_is_a_no_op(leader: Driver) -> None:
    rep = leader.call("transfer_leader", {"region": 1, "store": 1})
    assert rep.ok  # transferring to itself is a no-op
    assert leader.store.peers[1].leader_store() == 1


def test_region_not_found(leader: Driver) -> None:
    assert error_kind(leader.call("put", write_args(region=99, value=b"v"))) == "RegionNotFound"
    assert error_kind(leader.call("get", read_args(region=99, key=b"k"))) == "RegionNotFound"
    rep = leader.call("transfer_leader", {"region": 99, "store": 1})
    assert error_kind(rep) == "RegionNotFound"


@pytest.mark.parametrize("epoch", [(0, 1), (2, 1)])
def test_epoch_not_match(leader: Driver, epoch: tuple[int, int]) -> None:
    for op, args in [
        ("put", write_args(epoch=epoch, value=b"v")),
        ("get", read_args(epoch=epoch, key=b"k")),
    ]:
        rep = leader.call(op, args)
        assert error_kind(rep) == "EpochNotMatch"
        regions = [Region.from_wire(w) for w in rep.result[2]["regions"]]
        assert regions[0].id == 1 and regions[0].epoch.version == 1


def test_split_then_key_not_in_region_and_stale_epoch(leader: Driver) -> None:
    assert leader.call("put", write_args(key=b"z", value=b"before")).ok
    rep = leader.call("split", {"region": 1, "epoch": [1, 1], "key": b"m"})
    assert rep.ok, rep
    left, right = (Region.from_wire(w) for w in rep.result)
    assert (left.start, left.end, right.start, right.end) == (b"", b"m", b"m", b"")
    leader.lead()
    assert set(leader.store.peers) == {1, right.id}
    new = (left.epoch.version, left.epoch.conf_ver)
    rep = leader.call("put", write_args(key=b"z", epoch=new, value=b"v"))
    assert error_kind(rep) == "KeyNotInRegion"
    assert Region.from_wire(rep.result[2]["region"]) == left
    rep = leader.call("get", read_args(key=b"z", epoch=new))
    assert error_kind(rep) == "KeyNotInRegion"
    # the old epoch gets both halves back
    rep = leader.call("get", read_args(key=b"z", epoch=(1, 1)))
    assert error_kind(rep) == "EpochNotMatch"
    ids = {Region.from_wire(w).id for w in rep.result[2]["regions"]}
    assert ids == {1, right.id}
    # the data moved with the range, not a byte copied
    rep = leader.call("get", read_args(region=right.id, key=b"z", epoch=new))
    assert rep.ok and rep.result == b"before"
    # a split at an existing boundary
    rep = leader.call("split", {"region": right.id, "epoch": list(new), "key": b"m"})
    assert error_kind(rep) == "EpochNotMatch"


@pytest.mark.parametrize(
    ("op", "args"),
    [
        ("put", write_args(key="str", value=b"v")),
        ("put", write_args(value="str")),
        ("put", write_args(value=5)),
        ("put", write_args(key=b"k" * (MAX_KEY_SIZE + 1), value=b"v")),
        ("put", write_args(value=b"v" * (MAX_VALUE_SIZE + 1))),
        ("put", write_args(value=b"v", seq=-1)),
        ("put", write_args(value=b"v", client=-1)),
        ("put", write_args(value=b"v", acked="0")),
        ("put", {"region": 1, "epoch": [1, 1], "key": b"k", "value": b"v"}),
        ("put", write_args(value=b"v", epoch=(1,))),
        ("put", write_args(value=b"v", epoch="ab")),
        ("put", write_args(value=b"v", region=[1])),
        ("cas", write_args(expected=5, new=b"n")),
        ("cas", write_args(expected=None)),
        ("delete", write_args(key=None)),
        ("get", read_args(key=1)),
        ("get", read_args()),
        ("scan", read_args(start=b"", end="z")),
        ("scan", read_args(start=b"a")),
        ("frobnicate", {}),
        ("", {}),
    ],
)
def test_invalid_requests(leader: Driver, op: str, args: dict) -> None:
    rep = leader.call(op, args)
    assert error_kind(rep) == "InvalidRequest"


def test_put_get_delete_cas(leader: Driver) -> None:
    assert leader.call("put", write_args(key=b"k", value=b"v1")).ok
    assert leader.call("get", read_args(key=b"k")).result == b"v1"
    rep = leader.call("cas", write_args(key=b"k", expected=b"v1", new=b"v2"))
    assert rep.ok and rep.result is True
    rep = leader.call("cas", write_args(key=b"k", expected=b"v1", new=b"v3"))
    assert rep.ok and rep.result is False
    assert leader.call("get", read_args(key=b"k")).result == b"v2"
    assert leader.call("delete", write_args(key=b"k")).ok
    rep = leader.call("get", read_args(key=b"k"))
    assert rep.ok and rep.result is None


def test_many_writes_in_one_turn_are_one_entry(leader: Driver) -> None:
    peer = leader.store.peers[1]
    before = peer.status().last_index
    rids = [leader.send("put", write_args(key=b"k%d" % i, value=b"v")) for i in range(20)]
    leader.until(lambda: all(r in leader.replies for r in rids))
    assert all(leader.replies[r].ok for r in rids)
    assert peer.status().last_index == before + 1


def test_retried_write_is_answered_from_the_session(leader: Driver) -> None:
    args = write_args(key=b"x", expected=None, new=b"1", client=77)
    assert leader.call("cas", args).result is True
    assert leader.call("put", write_args(key=b"x", value=b"0", client=78)).ok
    assert leader.call("cas", dict(args)).result is True  # the same (client, seq)
    assert leader.call("get", read_args(key=b"x")).result == b"0"


def test_scan_limits(leader: Driver) -> None:
    keys = [b"s%d" % i for i in range(6)]
    for k in reversed(keys):
        assert leader.call("put", write_args(key=k, value=k.upper())).ok
    rows = leader.call("scan", read_args(start=b"s", end=b"t", limit=2)).result
    assert rows == [[b"s0", b"S0"], [b"s1", b"S1"]]
    for limit in (None, 10**9):
        rows = leader.call("scan", read_args(start=b"s", end=b"t", limit=limit)).result
        assert [r[0] for r in rows] == keys, limit
    for bad in (0, -3, "x", True):
        rep = leader.call("scan", read_args(start=b"s", end=b"t", limit=bad))
        assert not rep.ok and rep.result[0] == "InvalidRequest", bad
    rows = leader.call("scan", read_args(start=b"s2", end=b"s4")).result
    assert [r[0] for r in rows] == [b"s2", b"s3"]
    assert leader.call("scan", read_args(start=b"s4", end=b"s2")).result == []
    rows = leader.call("scan", read_args(start=b"s5", end=b"")).result
    assert [r[0] for r in rows] == [b"s5"]


def test_scan_stops_at_the_region_end(leader: Driver) -> None:
    for k in (b"a", b"l", b"m", b"z"):
        assert leader.call("put", write_args(key=k, value=b"v")).ok
    rep = leader.call("split", {"region": 1, "epoch": [1, 1], "key": b"m"})
    assert rep.ok
    leader.lead()
    rows = leader.call("scan", read_args(start=b"", end=b"", epoch=(2, 1))).result
    assert [r[0] for r in rows] == [b"a", b"l"]


def test_server_busy(leader: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(write, "MAX_PENDING_PROPOSALS", 0)
    assert error_kind(leader.call("put", write_args(value=b"v"))) == "ServerBusy"


def test_regions_and_status(leader: Driver) -> None:
    rep = leader.call("regions", {})
    assert rep.ok
    [[wire, lead]] = rep.result["regions"]
    assert Region.from_wire(wire).id == 1 and lead == 1
    status = leader.call("status", {}).result
    assert status["store_id"] == 1
    assert status["stores"][0]["id"] == 1 and status["stores"][0]["leaders"] == 1


def test_garbage_frames_are_dropped(leader: Driver) -> None:
    for frame in (
        b"",
        b"\x01",
        b"\x07\x02junk",
        b"\x01\x02" + msgpack.packb({"not": "a request"}),
        b"\x01\x03" + msgpack.packb([1, True, None]),  # a reply is not for a store
        b"\x01\x01" + msgpack.packb([0, 1, [], {}, []]),  # another cluster's traffic
    ):
        leader.inbox.append((b"id", frame, PLAIN))
    leader.turn()
    assert leader.replies == {}
    assert leader.call("put", write_args(value=b"still")).ok


def test_an_empty_proposal_from_a_peer_store_does_not_crash(leader: Driver) -> None:
    store = leader.store
    prop = Message(MessageType.PROP, to=1, frm=1)
    item = codec.RaftItem(1, (1, 1), prop, store.peers[1].region_wire())
    frame = codec.encode_peer_batch(codec.PeerBatch(store.ctx.cluster_id, 2, [item]))
    leader.inbox.append((b"peer", frame, PLAIN))
    assert leader.call("put", write_args(value=b"still")).ok


def test_join_adds_a_store_once_and_refuses_taken_ids_and_addresses(leader: Driver) -> None:
    store = leader.store
    rep = leader.call("join", {"store_id": 4, "addr": "127.0.0.1:1"})
    assert rep.ok and rep.result["cluster_id"] == store.ctx.cluster_id
    assert rep.result["stores"] == {1: store.ctx.config.addr, 4: "127.0.0.1:1"}
    assert leader.call("join", {"store_id": 4, "addr": "127.0.0.1:1"}).ok  # asked again
    assert error_kind(leader.call("join", {"store_id": 4, "addr": "127.0.0.1:2"})) == (
        "InvalidRequest"
    )
    assert error_kind(leader.call("join", {"store_id": 5, "addr": "127.0.0.1:1"})) == (
        "InvalidRequest"
    )
    assert error_kind(leader.call("join", {"store_id": "5", "addr": "x:1"})) == "InvalidRequest"
    for bad in ("localhost", "x:0", "x:99999", ":1", 7):
        assert error_kind(leader.call("join", {"store_id": 6, "addr": bad})) == "InvalidRequest"
    store.ctx.book.stats[4] = {"regions": 0}  # store 4 has run: it lost its data if it asks again
    assert error_kind(leader.call("join", {"store_id": 4, "addr": "127.0.0.1:1"})) == (
        "InvalidRequest"
    )
    store.close()
    reopened = Store(store.ctx.config, START)
    try:
        assert reopened.ctx.book.addrs == {1: store.ctx.config.addr, 4: "127.0.0.1:1"}  # durable
    finally:
        reopened.close()


@pytest.mark.parametrize(
    "args",
    [
        {"region": 1, "epoch": [1, 1], "store": 9, "change": "add"},  # no such store
        {"region": 1, "epoch": [1, 1], "store": 1, "change": "promote"},
        {"region": 1, "epoch": [1, 1], "store": "1", "change": "add"},
    ],
)
def test_bad_replica_changes_are_refused(leader: Driver, args: dict) -> None:
    assert error_kind(leader.call("change_peer", args)) == "InvalidRequest"


def test_replica_change_goals_already_met_answer_at_once(leader: Driver) -> None:
    add = leader.call("change_peer", {"region": 1, "epoch": [1, 1], "store": 1, "change": "add"})
    assert add.ok and Region.from_wire(add.result).peer_on(1) is not None
    rep = leader.call("change_peer", {"region": 1, "epoch": [1, 1], "store": 1, "change": "remove"})
    # The only voter cannot hand leadership to anyone: it waits.
    assert error_kind(rep) == "ServerBusy"


def test_a_store_sends_directory_requests_elsewhere_until_it_heard_the_cluster(
    tmp_path: Path,
) -> None:
    addr = "127.0.0.1:1"
    two = StoreConfig(
        1, addr, str(tmp_path / "s1"), {1: addr, 2: "127.0.0.1:2"}, 1, 0.01, sync=False
    )
    store = Store(two, START)
    try:
        d = Driver(store)
        assert error_kind(d.call("regions", {})) == "ServerBusy"
        assert error_kind(d.call("status", {})) == "ServerBusy"
        store.ctx.book.stats[2] = {"regions": 0}  # store 2's gossip arrived
        assert d.call("regions", {}).ok and d.call("status", {}).ok
    finally:
        store.close()


def test_a_read_accepted_before_a_split_is_refused_when_served_after_it(leader: Driver) -> None:
    """A scan goes on from the end of the region it was sent to: served
    after a split shrank that region, it would skip the split-off keys."""
    peer = leader.store.peers[1]
    accepted = ReadOp("scan", b"a", b"", 10, version=peer.region.epoch.version)
    assert read.execute(leader.store.ctx, peer, accepted) == []
    rep = leader.call("split", {"region": 1, "epoch": [1, 1], "key": b"m"})
    assert rep.ok
    result = read.execute(leader.store.ctx, peer, accepted)  # served after the split
    assert isinstance(result, EpochNotMatch)


def test_log_gc_discards_a_step_per_turn_and_keeps_the_tail(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.log_gc_threshold, cfg.log_gc_keep = 32, 8
    cfg.apply_flush_interval = 0.0  # applied data on disk every turn
    store = Store(cfg, START)
    try:
        driver = Driver(store)
        driver.lead()
        storage = store.peers[1].storage
        start, steps = storage.first_index(), []
        for i in range(120):
            first = storage.first_index()
            assert driver.call("put", write_args(key=b"k%d" % i, value=b"v")).ok
            applied = storage.apply_state.applied_index
            steps.append(storage.first_index() - first)
            assert applied - storage.first_index() + 1 <= cfg.log_gc_threshold + 1
            if storage.first_index() > start:
                assert storage.first_index() - 1 <= applied - cfg.log_gc_keep
        assert storage.first_index() > start + 60, "the log was compacted as it grew"
        assert max(steps) <= cfg.log_gc_threshold // ready.GC_STEPS
    finally:
        store.close()


def test_applied_data_in_memory_is_applied_again_after_a_crash_never_twice(
    tmp_path: Path,
) -> None:
    """Applied data waits in the apply buffer (no flush in this test): the
    log keeps every entry past the applied index on disk, and a store that
    stops without writing the buffer (as after kill -9) applies them again
    at its start: every acknowledged write is there, and a retried write is
    answered from its session instead of being applied a second time."""
    cfg = config(tmp_path)
    cfg.log_gc_threshold, cfg.log_gc_keep = 32, 8
    cfg.apply_flush_interval = 3600.0
    store = Store(cfg, START)
    try:
        driver = Driver(store)
        driver.lead()
        storage = store.peers[1].storage
        on_disk = storage.apply_state.applied_index
        for i in range(100):
            assert driver.call("put", write_args(key=b"k%d" % i, value=b"v%d" % i)).ok
        swap = write_args(key=b"k0", expected=b"v0", new=b"swapped", client=9, seq=1)
        assert driver.call("cas", swap).result is True
        assert storage.apply_state.applied_index == on_disk, "nothing flushed"
        assert storage.first_index() - 1 <= on_disk, "GC kept what is not applied on disk"
        assert driver.call("get", {"region": 1, "epoch": [1, 1], "key": b"k7"}).result == b"v7"
    finally:
        store.close()  # no flush: the buffer is lost
    store = Store(cfg, START + 10)
    try:
        driver = Driver(store)
        driver.lead()
        get = {"region": 1, "epoch": [1, 1]}
        for i in range(1, 100):
            assert driver.call("get", {**get, "key": b"k%d" % i}).result == b"v%d" % i
        assert driver.call("get", {**get, "key": b"k0"}).result == b"swapped"
        # The same CAS again (a client's retry): answered from its session.
        assert driver.call("cas", swap).result is True
        assert driver.call("put", write_args(key=b"k0", value=b"later")).ok
        assert driver.call("cas", swap).result is True, "a retry is never applied again"
        assert driver.call("get", {**get, "key": b"k0"}).result == b"later"
    finally:
        store.close()
