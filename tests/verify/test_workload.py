"""The workload against an in-memory stand-in for AsyncClient: what it asks,
and how it records what it saw (ok, fail, info; processes; set reads)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any, Self

from multiraft.errors import NotLeader, Timeout
from multiraft.verify.workload import Clock, Keys, Workload


class FakeClient:
    """A dict with AsyncClient's key-value methods; `fail_next` raises the
    next call's error instead."""

    def __init__(self, timeout: float = 1.0) -> None:
        self.timeout = timeout
        self.data: dict[bytes, bytes] = {}
        self.fail_next: list[Exception] = []
        self.calls = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def _enter(self) -> None:
        self.calls += 1
        await asyncio.sleep(0)
        if self.fail_next:
            raise self.fail_next.pop(0)

    async def get(self, key: bytes) -> bytes | None:
        await self._enter()
        return self.data.get(key)

    async def put(self, key: bytes, value: bytes) -> None:
        await self._enter()
        self.data[key] = value

    async def delete(self, key: bytes) -> None:
        await self._enter()
        self.data.pop(key, None)

    async def cas(self, key: bytes, expected: bytes | None, new: bytes | None) -> bool:
        await self._enter()
        if self.data.get(key) != expected:
            return False
        if new is None:
            self.data.pop(key, None)
        else:
            self.data[key] = new
        return True

    async def scan(self, start: bytes, end: bytes) -> list[tuple[bytes, bytes]]:
        await self._enter()
        return sorted((k, v) for k, v in self.data.items() if start <= k < end)


def _workload(**kw: Any) -> Workload:
    return Workload(Keys.make("abc123", 4, 1), Clock(), workers=2, seed=1, **kw)


def test_keys_are_under_the_run_prefix_and_each_set_owns_a_region() -> None:
    keys = Keys.make("abc123", 12, 2)
    assert keys.registers[0] == "verify-abc123/r00" and keys.registers[-1] == "verify-abc123/r11"
    assert keys.sets == ("verify-abc123/s0", "verify-abc123/s1")
    assert all(k.startswith("verify-abc123/") for k in keys.all)
    points = keys.split_points()
    assert points == sorted(points)
    assert points == [
        b"verify-abc123/r00",
        b"verify-abc123/r04",
        b"verify-abc123/r08",
        b"verify-abc123/s0/",
        b"verify-abc123/s00",
        b"verify-abc123/s1/",
        b"verify-abc123/s10",
    ]
    s0_start, s0_end = keys.set_range("verify-abc123/s0")
    assert s0_start in points and s0_end in points
    element = keys.element("verify-abc123/s0", 7)
    assert element == b"verify-abc123/s0/00000007" and s0_start <= element < s0_end
    # No other key of the run falls in a set's region.
    assert all(not s0_start <= k.encode() < s0_end for k in keys.registers)


def test_ops_are_recorded_as_ok_fail_or_info() -> None:
    async def go() -> list[Any]:
        w, c = _workload(), FakeClient()
        key = w.keys.registers[0]
        await w.invoke(c, 0, key, "put", "1")
        await w.invoke(c, 0, key, "get", None)
        c.fail_next = [NotLeader("no", None)]
        await w.invoke(c, 0, key, "put", "2")
        c.fail_next = [Timeout("slow")]
        await w.invoke(c, 0, key, "put", "3")
        await w.invoke(c, 1, key, "cas", ["1", "4"])
        await w.invoke(c, 1, key, "cas", ["1", "5"])
        await w.invoke(c, 1, key, "delete", None)
        await w.invoke(c, 1, key, "get", None)
        return w.ops

    ops = asyncio.run(go())
    assert [(o.f, o.type, o.result) for o in ops] == [
        ("put", "ok", None),
        ("get", "ok", "1"),
        ("put", "fail", None),
        ("put", "info", None),
        ("cas", "ok", True),
        ("cas", "ok", False),
        ("delete", "ok", None),
        ("get", "ok", None),
    ]
    assert all(0 <= o.start <= o.end for o in ops)
    assert [o.start for o in ops] == sorted(o.start for o in ops)


def test_a_set_add_is_a_put_under_the_set_and_a_read_the_sorted_elements() -> None:
    async def go() -> tuple[list[Any], dict[bytes, bytes]]:
        w, c = _workload(), FakeClient()
        s = w.keys.sets[0]
        for e in (12, 3, 7):
            await w.invoke(c, 0, s, "add", e)
        c.data[b"verify-abc123/s00"] = b"outside"  # just past the set's range
        await w.invoke(c, 0, s, "read", None)
        return w.ops, c.data

    ops, data = asyncio.run(go())
    assert data[b"verify-abc123/s0/00000012"] == b"12"
    assert ops[-1].f == "read" and ops[-1].result == [3, 7, 12]


def test_cas_expects_the_last_value_seen_and_values_are_unique() -> None:
    w = _workload()
    rng = random.Random(3)
    chosen = [w.choose(rng) for _ in range(2000)]
    written = [v for _, f, v in chosen if f == "put"] + [v[1] for _, f, v in chosen if f == "cas"]
    assert len(written) == len(set(written))
    adds = [v for _, f, v in chosen if f == "add"]
    assert len(adds) == len(set(adds)) and all(isinstance(e, int) for e in adds)
    kinds = Counter(f for _, f, _ in chosen)
    assert set(kinds) == {"get", "put", "cas", "delete", "add", "read"}

    async def go() -> None:
        c = FakeClient()
        key = w.keys.registers[1]
        await w.invoke(c, 0, key, "put", "x")
        while True:
            k, f, v = w.choose(rng)
            if k == key and f == "cas":
                assert v[0] == "x"
                return

    asyncio.run(go())


def test_a_worker_goes_on_as_a_new_process_after_an_unknown_outcome() -> None:
    async def go() -> list[Any]:
        w, c = _workload(), FakeClient()
        c.fail_next = [Timeout("slow"), Timeout("slow")]
        stop = asyncio.Event()

        async def stop_soon() -> None:
            while c.calls < 40:
                await asyncio.sleep(0)
            stop.set()

        await asyncio.wait_for(asyncio.gather(w.run(lambda: c, stop), stop_soon()), 10)
        return w.ops

    ops = asyncio.run(go())
    infos = [o for o in ops if o.type == "info"]
    assert len(infos) == 2
    for op in infos:
        later = [o.process for o in ops if o.start > op.end and o.process == op.process]
        assert later == [], "a process with an op in doubt must not run another"
    assert {o.process for o in ops} == {0, 1, 2, 3}


def test_final_reads_retry_until_each_key_reads_ok() -> None:
    async def go() -> Workload:
        w, c = _workload(), FakeClient()
        c.fail_next = [Timeout("slow"), NotLeader("no", None)]
        await w.final_reads(c, patience=10)
        return w

    w = asyncio.run(go())
    reads = [o for o in w.ops if o.type == "ok"]
    assert sorted(o.key for o in reads) == sorted(w.keys.all)
    assert {o.f for o in reads if o.key in w.keys.sets} == {"read"}
    assert len(w.ops) == len(w.keys.all) + 2
    assert w.missing_final_reads(since=0.0) == []
    assert all(o.process >= w.workers for o in w.ops)


def test_pacing_keeps_the_rate_near_the_target() -> None:
    async def go() -> int:
        w, c = _workload(rate=200.0), FakeClient()
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.5, stop.set)
        await w.run(lambda: c, stop)
        return len(w.ops)

    assert 50 <= asyncio.run(go()) <= 150


def test_an_operation_cut_short_by_an_interrupt_is_recorded_as_unknown() -> None:
    """A run stopped by Ctrl-C keeps a checkable history: the operations
    then in flight may or may not have happened."""

    class Stuck(FakeClient):
        async def put(self, key: bytes, value: bytes) -> None:
            self.data[key] = value  # it took effect; the answer never came
            await asyncio.Event().wait()

    async def main() -> Workload:
        w = _workload()
        client = Stuck()
        task = asyncio.create_task(w.invoke(client, 0, w.keys.registers[0], "put", "7"))
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return w

    [op] = asyncio.run(main()).ops
    assert (op.f, op.value, op.type, op.result) == ("put", "7", "info", None)
