"""Client against scripted fake stores: the API, routing and retry semantics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import zmq

from multiraft import AsyncClient, Client, errors
from multiraft.client.connection import Connection, PendingTable
from multiraft.protocol.limits import MAX_KEY_SIZE, MAX_VALUE_SIZE
from multiraft.protocol.wire import Request

from .fake_store import DROP, Cluster, FakeStore, error, free_port_addr, region

FAST = {"attempt_timeout": 0.2}


@pytest.fixture
def client(store1: FakeStore) -> Iterator[Client]:
    with Client([store1.addr], timeout=2.0, **FAST) as c:
        yield c


def test_basic_operations(client: Client, store1: FakeStore) -> None:
    assert client.get(b"k") is None
    assert client.put(b"k", b"v") is None
    assert client.get(b"k") == b"v"
    assert client.cas(b"k", b"x", b"y") is False
    assert client.cas(b"k", b"v", b"w") is True
    assert client.cas(b"n", None, b"1") is True
    assert client.scan() == [(b"k", b"w"), (b"n", b"1")]
    assert client.scan(b"l", limit=5) == [(b"n", b"1")]
    assert client.cas(b"n", b"1", None) is True
    client.delete(b"k")
    assert client.scan() == []
    put = store1.ops("put")[0].args
    assert put["region"] == 1 and put["epoch"] == [1, 1]
    assert put["client"] == client.client_id and put["seq"] == 1 and put["acked"] == 1
    seqs = [r.args["seq"] for r in store1.requests if "seq" in r.args]
    assert seqs == sorted(set(seqs)), "every write gets a fresh, increasing seq"
    assert store1.ops("delete")[0].args["acked"] == store1.ops("delete")[0].args["seq"]


def test_wrong_types_and_sizes_are_refused_locally(client: Client, store1: FakeStore) -> None:
    before = len(store1.requests)
    with pytest.raises(TypeError):
        client.put("k", b"v")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidRequest):
        client.put(b"k", "v")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidRequest):
        client.get(b"k" * (MAX_KEY_SIZE + 1))
    with pytest.raises(errors.InvalidRequest):
        client.put(b"k", b"v" * (MAX_VALUE_SIZE + 1))
    with pytest.raises(errors.InvalidRequest):
        client.cas(b"k", 1, b"v")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidRequest):
        client.scan(limit=-1)
    with pytest.raises(TypeError):
        client.scan(limit=1.5)  # type: ignore[arg-type]
    assert len(store1.requests) == before


def test_not_leader_redirects_with_same_seq(
    cluster: Cluster, store1: FakeStore, store2: FakeStore
) -> None:
    store1.script["put"].append(error("NotLeader", "not leader", {"leader": 2}))
    with Client([store1.addr], timeout=2.0, **FAST) as c:
        c.put(b"k", b"v")
        assert c.get(b"k") == b"v"
    (first,) = store1.ops("put")
    (second,) = store2.ops("put")
    assert first.args["seq"] == second.args["seq"]
    assert store2.ops("get"), "the leader hint sticks"
    assert cluster.data == {b"k": b"v"}


def test_not_leader_without_hint_backs_off_and_retries(store1: FakeStore) -> None:
    store1.script["get"] += [error("NotLeader", "election", {"leader": None})] * 3
    with Client([store1.addr], timeout=2.0, **FAST) as c:
        assert c.get(b"k") is None
    assert len(store1.ops("get")) == 4


def test_epoch_not_match_updates_routes(cluster: Cluster, store1: FakeStore) -> None:
    left, right = region(1, b"", b"m", version=2), region(2, b"m", b"", version=2)
    stale = error("EpochNotMatch", "split", {"regions": [left.to_wire(), right.to_wire()]})
    store1.script["put"].append(stale)
    with Client([store1.addr], timeout=2.0, **FAST) as c:
        c.put(b"x", b"1")
        assert [r.id for r in c._async.routes.regions()] == [1, 2]
    first, second = store1.ops("put")
    assert (first.args["region"], first.args["epoch"]) == (1, [1, 1])
    assert (second.args["region"], second.args["epoch"]) == (2, [2, 1])
    assert first.args["seq"] == second.args["seq"]


def test_key_not_in_region_and_region_not_found_refresh(
    cluster: Cluster, store1: FakeStore
) -> None:
    store1.script["get"] += [
        error("KeyNotInRegion", "moved", {"region": region(1, b"", b"m", version=2).to_wire()}),
        error("RegionNotFound", "gone"),
    ]
    with Client([store1.addr], timeout=2.0, **FAST) as c:
        c.get(b"a")  # warm the cache first
        cluster.regions = [(region(1, b"", b"m", 2), 1), (region(2, b"m", b"", 2), 1)]
        assert c.get(b"z") is None
    assert store1.ops("get")[-1].args["region"] == 2
    assert len(store1.ops("regions")) >= 2


def test_lost_reply_is_retried_with_same_seq(cluster: Cluster, store1: FakeStore) -> None:
    store1.script["put"].append(DROP)
    with Client([store1.addr], timeout=2.0, **FAST) as c:
        c.put(b"k", b"v")
    first, second = store1.ops("put")
    assert first.args["seq"] == second.args["seq"]
    assert first.request_id != second.request_id
    assert cluster.data == {b"k": b"v"}


def test_late_reply_to_an_earlier_attempt_is_accepted(store1: FakeStore) -> None:
    def slow(_req: object) -> tuple[bool, None]:
        time.sleep(0.35)  # past the first attempt's timeout
        return True, None

    store1.script["put"] += [slow, DROP, DROP, DROP]
    with Client([store1.addr], timeout=2.0, **FAST) as c:
        t0 = time.monotonic()
        c.put(b"k", b"v")
        assert time.monotonic() - t0 < 1.0


def test_silence_until_deadline_raises_timeout(store1: FakeStore) -> None:
    store1.script["put"] += [DROP] * 100
    with Client([store1.addr], timeout=0.8, **FAST) as c:
        t0 = time.monotonic()
        with pytest.raises(errors.Timeout):
            c.put(b"k", b"v")
        assert time.monotonic() - t0 < 1.5


def test_definite_refusals_raise_the_refusal_not_timeout(store1: FakeStore) -> None:
    store1.script["put"] += [error("ServerBusy", "busy")] * 1000
    with Client([store1.addr], timeout=0.5, **FAST) as c, pytest.raises(errors.ServerBusy):
        c.put(b"k", b"v")


def test_unknown_outcome_is_sticky(store1: FakeStore) -> None:
    store1.script["put"] += [DROP] + [error("ServerBusy", "busy")] * 1000
    with Client([store1.addr], timeout=0.8, **FAST) as c, pytest.raises(errors.Timeout):
        c.put(b"k", b"v")


@pytest.mark.parametrize("kind", ["InvalidRequest", "StoreError", "NoSuchKind"])
def test_fatal_errors_raise_at_once(store1: FakeStore, kind: str) -> None:
    store1.script["put"].append(error(kind, "nope"))
    with Client([store1.addr], timeout=2.0, **FAST) as c:
        t0 = time.monotonic()
        with pytest.raises(
            errors.InvalidRequest if kind == "InvalidRequest" else errors.StoreError
        ):
            c.put(b"k", b"v")
        assert time.monotonic() - t0 < 0.5
    assert len(store1.ops("put")) == 1


def test_down_seed_is_skipped(store1: FakeStore) -> None:
    with Client([free_port_addr(), store1.addr], timeout=2.0, **FAST) as c:
        c.put(b"k", b"v")
        assert c.get(b"k") == b"v"


def test_no_store_at_all_times_out() -> None:
    with Client([free_port_addr()], timeout=0.5, **FAST) as c, pytest.raises(errors.Timeout):
        c.get(b"k")


def test_scan_walks_regions_and_pages(
    cluster: Cluster, store1: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiraft.client.async_client as ac

    monkeypatch.setattr(ac, "MAX_SCAN_LIMIT", 2)
    cluster.regions = [
        (region(1, b"", b"c", 2), 1),
        (region(2, b"c", b"f", 2), 1),
        (region(3, b"f", b"", 2), 1),
    ]
    cluster.data = {bytes([c]): b"v" for c in b"abcdefgh"}
    with Client([store1.addr], timeout=2.0, **FAST) as c:
        assert [k for k, _ in c.scan()] == [bytes([x]) for x in b"abcdefgh"]
        assert [k for k, _ in c.scan(b"b", b"g")] == [b"b", b"c", b"d", b"e", b"f"]
        assert [k for k, _ in c.scan(b"b", limit=3)] == [b"b", b"c", b"d"]
        assert c.scan(b"x", b"b") == []
        assert c.scan(limit=0) == []
    for req in store1.ops("scan"):
        reg = {1: (b"", b"c"), 2: (b"c", b"f"), 3: (b"f", b"")}[req.args["region"]]
        assert reg[0] <= req.args["start"]
        assert reg[1] == b"" or (req.args["end"] and req.args["end"] <= reg[1])
        assert req.args["limit"] <= 2


def test_acked_is_lowest_seq_in_flight(store1: FakeStore) -> None:
    async def main() -> None:
        async with AsyncClient([store1.addr], timeout=2.0, **FAST) as c:
            store1.script["put"].append(DROP)  # seq 1 stays in flight a while
            await asyncio.gather(c.put(b"a", b"1"), c.put(b"b", b"2"), c.put(b"c", b"3"))
            await c.put(b"d", b"4")

    asyncio.run(main())
    puts = store1.ops("put")
    assert {r.args["acked"] for r in puts[:3]} == {1}
    assert puts[-1].args["seq"] == 4 and puts[-1].args["acked"] == 4


def test_many_concurrent_requests_share_one_socket(store1: FakeStore) -> None:
    async def main() -> None:
        async with AsyncClient(store1.addr, timeout=5.0) as c:
            await asyncio.gather(*(c.put(b"k%d" % i, b"v%d" % i) for i in range(100)))
            values = await asyncio.gather(*(c.get(b"k%d" % i) for i in range(100)))
            assert values == [b"v%d" % i for i in range(100)]
            assert len(c._conns) == 1

    asyncio.run(main())


def test_requests_of_one_event_loop_pass_share_a_frame(store1: FakeStore) -> None:
    async def main() -> None:
        async with AsyncClient(store1.addr, timeout=5.0) as c:
            await c.put(b"warm", b"up")  # the route cache is loaded
            before = store1.frames
            await asyncio.gather(*(c.put(b"k%d" % i, b"v%d" % i) for i in range(200)))
            assert store1.frames - before == 1
            assert len(store1.ops("put")) == 201
            before = store1.frames
            await asyncio.gather(*(c.get(b"k%d" % i) for i in range(2500)))
            assert store1.frames - before == 3  # at most BATCH_REQUESTS (1024) per frame

    asyncio.run(main())


def test_a_write_that_never_left_is_a_definite_failure() -> None:
    """Nothing listens: the request waits in the outbox and is taken back at
    each attempt's timeout, so the client knows it never applied."""
    with Client([free_port_addr()], timeout=0.5, **FAST) as c:
        with pytest.raises(errors.Timeout) as caught:
            c.put(b"k", b"v")
        assert "may or may not" not in str(caught.value)


def test_withdraw_takes_back_only_unsent_requests(store1: FakeStore) -> None:
    async def main() -> None:
        ctx = zmq.Context()
        pending: PendingTable = {}
        nowhere = Connection(ctx, free_port_addr(), pending)
        live = Connection(ctx, store1.addr, pending)
        try:
            fut = asyncio.get_running_loop().create_future()
            pending[2] = fut
            nowhere.submit(Request(1, "get", {"key": b"k"}))
            live.submit(Request(2, "regions", {}))
            async with asyncio.timeout(5):
                await fut  # both flushes ran; only the live one could leave
            assert nowhere.withdraw(1)
            assert not nowhere.withdraw(1)
            assert not live.withdraw(2)
        finally:
            await nowhere.close()
            await live.close()
            ctx.destroy(linger=0)

    asyncio.run(main())


def test_admin_helpers(cluster: Cluster, store1: FakeStore, store2: FakeStore) -> None:
    left, right = region(1, b"", b"m", 2, (1, 2)), region(2, b"m", b"", 2, (1, 2))
    store1.script["split"].append((True, [left.to_wire(), right.to_wire()]))
    with Client(f"{store1.addr},{store2.addr}", timeout=2.0, **FAST) as c:
        ((reg, leader),) = c.regions()
        assert reg.id == 1 and leader == 1
        assert c.split(b"m") == (left, right)
        assert store1.ops("split")[0].args == {"region": 1, "epoch": [1, 1], "key": b"m"}
        assert c.split(b"m") == (left, right)  # already there: no second request
        assert len(store1.ops("split")) == 1
        with pytest.raises(errors.InvalidRequest):
            c.split(b"")
        c.transfer_leader(2, 2)
        assert store1.ops("transfer_leader")[0].args["store"] == 2
        with pytest.raises(errors.RegionNotFound):
            c.transfer_leader(99, 2)
        st = c.status()
        assert st["store_id"] in (1, 2)
        assert [s["id"] for s in st["stores"]] == [1, 2]
        assert st["regions"][0][0].id == 1


def test_closed_client_refuses(store1: FakeStore) -> None:
    c = Client([store1.addr], timeout=1.0)
    c.close()
    c.close()
    with pytest.raises(errors.MultiraftError):
        c.get(b"k")


def test_bad_addresses() -> None:
    with pytest.raises(ValueError):
        Client("")
    with pytest.raises(ValueError):
        AsyncClient(["nohostport"])


def test_write_window_bounds_unacknowledged_seqs(
    store1: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiraft.client.async_client as ac

    monkeypatch.setattr(ac, "WRITE_WINDOW", 4)

    async def main() -> None:
        async with AsyncClient([store1.addr], timeout=3.0, **FAST) as c:
            store1.script["put"].append(DROP)  # seq 1 stalls one attempt
            await asyncio.gather(*(c.put(b"k%d" % i, b"v") for i in range(12)))

    asyncio.run(main())
    puts = store1.ops("put")
    assert len({r.args["seq"] for r in puts}) == 12
    assert all(r.args["seq"] - r.args["acked"] < 4 for r in puts)


def test_async_client_is_bound_to_its_first_loop(store1: FakeStore) -> None:
    c = AsyncClient([store1.addr], timeout=1.0)
    asyncio.run(c.put(b"k", b"v"))

    async def other_loop() -> None:
        try:
            with pytest.raises(errors.InvalidRequest):
                await c.get(b"k")
        finally:
            c._loop = asyncio.get_running_loop()  # let close() run here
            await c.close()

    asyncio.run(other_loop())


def test_dead_leader_fails_over_to_another_voter(cluster: Cluster, store2: FakeStore) -> None:
    cluster.stores[1] = free_port_addr()
    cluster.regions = [(region(1, stores=(1, 2)), 1)]
    with Client([store2.addr], timeout=3.0, **FAST) as c:
        t0 = time.monotonic()
        c.put(b"k", b"v")
        c.put(b"k2", b"v")  # the dead store is now a suspect: straight to store 2
        assert time.monotonic() - t0 < 0.6
    assert len(store2.ops("put")) == 2


def test_a_request_stuck_for_a_down_store_never_leaves_after_its_operation(
    cluster: Cluster, store2: FakeStore
) -> None:
    """A put whose leader is down waits in that store's outbox; once the
    operation ends (here: cancelled), nothing of it may be left to send when
    the store comes back."""
    cluster.stores[1] = free_port_addr()
    cluster.regions = [(region(1, stores=(1, 2)), 1)]

    async def main() -> None:
        async with AsyncClient([store2.addr], timeout=10.0, attempt_timeout=5.0) as c:
            task = asyncio.create_task(c.put(b"k", b"v"))
            async with asyncio.timeout(5):
                while not any(conn._outbox for conn in c._conns.values()):
                    await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not any(conn._outbox for conn in c._conns.values())

    asyncio.run(main())
    assert store2.ops("put") == []


def test_a_store_that_goes_away_ends_the_attempts_on_it_at_once(cluster: Cluster) -> None:
    """The leader's store answers nothing, then its process goes (here: its
    socket closes): the put waiting on it moves to the other voter long
    before its 5 s attempt timeout, and so does the next one, until the
    store is back."""
    cluster.regions = [(region(1, stores=(1, 2)), 1)]
    with FakeStore(cluster, 2) as store2:
        store1 = FakeStore(cluster, 1).__enter__()
        store1.script["put"] = [DROP]

        async def main() -> float:
            async with AsyncClient([store2.addr], timeout=20.0, attempt_timeout=5.0) as c:
                put = asyncio.create_task(c.put(b"k", b"v"))
                async with asyncio.timeout(5):
                    while not store1.ops("put"):
                        await asyncio.sleep(0.01)
                t0 = time.monotonic()
                store1.stop()
                await put
                await c.put(b"k2", b"v2")
                return time.monotonic() - t0

        assert asyncio.run(main()) < 2.0
    assert [r.args["key"] for r in store2.ops("put")] == [b"k", b"k2"]
    assert cluster.data == {b"k": b"v", b"k2": b"v2"}
