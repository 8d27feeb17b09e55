"""The nemesis against stand-ins for the cluster and the admin client: what
it breaks it heals (also when stopped or cancelled mid-fault), every fault
is recorded with its window, and admin faults pick sensible targets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from multiraft.errors import NotLeader
from multiraft.protocol.region import Epoch, PeerMeta, Region
from multiraft.verify import nemesis as nemesis_module
from multiraft.verify.history import Fault
from multiraft.verify.nemesis import Nemesis
from multiraft.verify.workload import Clock, Keys

KEYS = Keys.make("abc123", 8, 1)


class FakeNetwork:
    def __init__(self) -> None:
        self.cuts: list[list[list[int]]] = []

    def partition(self, groups: list[list[int]]) -> None:
        self.cuts.append(groups)

    def heal(self) -> None:
        self.cuts.clear()


class FakeCluster:
    """Records what was done; `broken` is what is not healed yet."""

    def __init__(self) -> None:
        self.network = FakeNetwork()
        self.log: list[tuple[str, int]] = []
        self.broken: set[tuple[str, int]] = set()

    def kill(self, sid: int) -> None:
        self.log.append(("kill", sid))
        self.broken.add(("kill", sid))

    def restart(self, sid: int) -> None:
        self.broken.remove(("kill", sid))

    def pause(self, sid: int) -> None:
        self.log.append(("pause", sid))
        self.broken.add(("pause", sid))

    def resume(self, sid: int) -> None:
        self.broken.remove(("pause", sid))


def _region(rid: int, start: str, end: str, stores: list[int]) -> Region:
    peers = tuple(PeerMeta(s, rid * 10 + s) for s in stores)
    return Region(rid, start.encode(), end.encode(), Epoch(1, 1), peers)


class FakeAdmin:
    """Two regions over the run's keys (the second from r04) and two
    without any, on stores 1-3 of 4, led by store 1; `refuse`: the admin
    calls raise."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.calls: list[tuple[str, Any]] = []
        r00, r04 = KEYS.registers[0], KEYS.registers[4]
        self.entries = [
            (_region(4, "", r00, [1, 2, 3]), 1),  # none of the run's keys
            (_region(1, r00, r04, [1, 2, 3]), 1),
            (_region(2, r04, "zzz", [1, 2, 3]), 1),
            (_region(3, "zzz", "", [1, 2, 3]), 1),  # none of the run's keys
        ]

    async def regions(self) -> list[tuple[Region, int | None]]:
        return self.entries

    async def _call(self, *call: Any) -> None:
        self.calls.append(call)
        await asyncio.sleep(0)
        if self.refuse:
            raise NotLeader("no", None)

    async def split(self, key: bytes) -> None:
        await self._call("split", key)

    async def transfer_leader(self, region_id: int, store_id: int) -> None:
        await self._call("transfer", region_id, store_id)

    async def move_peer(self, region_id: int, src: int, dst: int, timeout: float) -> None:
        await self._call("move", region_id, src, dst)


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nemesis_module, "CALM", (0.001, 0.005))
    monkeypatch.setattr(nemesis_module, "HOLD", (0.001, 0.01))


def _run(kinds: list[str], seconds: float, **kw: Any) -> tuple[Nemesis, FakeCluster, FakeAdmin]:
    cluster, admin = FakeCluster(), FakeAdmin(kw.pop("refuse", False))
    seen: list[Fault] = []
    n = Nemesis(
        kinds, Clock(), admin, KEYS, [1, 2, 3, 4], seed=5, cluster=cluster, log=seen.append, **kw
    )

    async def go() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        await asyncio.wait_for(n.run(stop), 10)

    asyncio.run(go())
    assert seen == n.faults
    return n, cluster, admin


def test_process_faults_are_healed_and_recorded_with_their_windows() -> None:
    n, cluster, _ = _run(["kill", "pause", "partition"], 0.5)
    assert cluster.broken == set() and cluster.network.cuts == []
    names = {f.name for f in n.faults}
    assert names == {"kill", "pause", "partition"}
    assert all(0 <= f.start <= f.end for f in n.faults)
    assert all(a.end <= b.start for a, b in zip(n.faults, n.faults[1:], strict=False))
    kills = [f for f in n.faults if f.name == "kill"]
    assert [f.detail for f in kills] == [f"store {s}" for k, s in cluster.log if k == "kill"]
    partitions = [f.detail for f in n.faults if f.name == "partition"]
    assert all(d.startswith("stores ") and " | " in d for d in partitions)
    # 4 stores: a minority of one, never two against two.
    assert all(len(d.split(" | ")[0].split(",")) == 1 for d in partitions)


def test_a_fault_in_progress_is_healed_when_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = FakeCluster()
    n = Nemesis(["kill"], Clock(), FakeAdmin(), KEYS, [1, 2, 3], seed=1, cluster=cluster)

    async def go() -> None:
        task = asyncio.create_task(n.run(asyncio.Event()))
        while not cluster.broken:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    monkeypatch.setattr(nemesis_module, "HOLD", (60.0, 60.0))
    asyncio.run(asyncio.wait_for(go(), 10))
    assert cluster.broken == set() and [f.name for f in n.faults] == ["kill"]


def test_admin_faults_pick_run_regions_and_sensible_targets() -> None:
    n, _, admin = _run(["split", "transfer", "move"], 0.3)
    assert {c[0] for c in admin.calls} == {"split", "transfer", "move"}
    for call in admin.calls:
        if call[0] == "split":
            starts = {KEYS.registers[0].encode(), KEYS.registers[4].encode()}
            assert call[1] in {k.encode() for k in KEYS.registers} - starts
        elif call[0] == "transfer":
            assert call[1] in (1, 2) and call[2] in (2, 3)
        else:
            assert call[1] in (1, 2) and call[2] in (1, 2, 3) and call[3] == 4
    assert {f.name for f in n.faults} == {"split", "transfer", "move"}
    assert not any("refused" in f.detail for f in n.faults)


def test_a_refused_admin_fault_says_so() -> None:
    n, _, _ = _run(["transfer"], 0.1, refuse=True)
    assert n.faults and all(f.detail.endswith("(refused: NotLeader)") for f in n.faults)


def test_process_faults_need_the_cluster() -> None:
    with pytest.raises(ValueError, match="need the cluster's processes"):
        Nemesis(["kill"], Clock(), FakeAdmin(), KEYS, [1, 2, 3], seed=1)
    with pytest.raises(ValueError, match="unknown nemeses: fire"):
        Nemesis(["fire"], Clock(), FakeAdmin(), KEYS, [1, 2, 3], seed=1)
