"""Replica changes with real store processes: replicas move by hand, stores
join and regions spread onto them, a store dies for good and its replicas
are rebuilt elsewhere, all under concurrent clients whose histories must be
linearizable and whose acknowledged writes must all be there at the end."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from multiraft import Client
from multiraft.errors import MultiraftError
from multiraft.protocol.region import VOTER
from multiraft.verify.history import Op
from tests.verify.assertions import assert_linearizable

from .harness import raw_request, wait_for
from .test_linearizable_under_faults import client_worker


def cli(cluster, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "multiraft.cli.main",
        *args,
        "--cluster",
        ",".join(cluster.endpoints()),
    ]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)


def region_list(cluster) -> list[dict]:
    out = cli(cluster, "region", "list", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_replicas_move_from_the_cli_under_load(make_cluster) -> None:
    c = make_cluster(3, 2)  # region 1 on stores 1 and 2; store 3 holds nothing
    with under_load(c.endpoints()) as (histories, acked):
        out = cli(c, "region", "move", "1", "1", "3")
        assert out.returncode == 0, out.stderr
        # Learner, promotion, removal: conf_ver 1 -> 4. Stores learn the new
        # descriptor from the leader's gossip, so the listing may lag a moment.
        region = wait_for("the move to show", lambda: current(c, 4))
        assert sorted((p["store_id"], p["role"]) for p in region["peers"]) == [
            (2, VOTER),
            (3, VOTER),
        ]
        leader = c.wait_leader(1)
        out = cli(c, "region", "add-peer", "1", "1")
        assert out.returncode == 0, out.stderr
        out = cli(c, "region", "remove-peer", "1", str(leader))  # the leader steps aside first
        assert out.returncode == 0, out.stderr
        region = wait_for("the removal to show", lambda: current(c, 7))
        assert sorted(p["store_id"] for p in region["peers"]) == sorted({1, 2, 3} - {leader})
    check_no_loss_and_linearizable(c.endpoints(), histories, acked)
    bad = cli(c, "region", "add-peer", "1", "9")
    assert bad.returncode != 0 and "no store 9" in bad.stderr


def current(cluster, conf_ver: int) -> dict | None:
    """Region 1 as every store lists it, once all list it at `conf_ver`."""
    seen = []
    for i in cluster.alive():
        reply = raw_request(cluster.addrs[i], "regions", {}, timeout=1.0)
        if reply is None or not reply.ok:
            return None
        seen += [w for w, _ in reply.result["regions"] if w[0] == 1]
    if not seen or any(w[3][1] != conf_ver for w in seen):
        return None
    return next(r for r in region_list(cluster) if r["id"] == 1)


def acked_writer(endpoints: list[str], stop: threading.Event, acked: dict) -> None:
    """Puts of fresh keys; remembers those acknowledged (a Timeout may or may
    not have applied, so only acknowledged ones are checked)."""
    with Client(endpoints, timeout=8) as client:
        n = 0
        while not stop.is_set():
            key, value = b"w%06d" % n, b"v%d" % n
            n += 1
            try:
                client.put(key, value)
            except MultiraftError:
                continue
            acked[key] = value


@contextmanager
def under_load(endpoints: list[str]) -> Iterator[tuple[list[list[Op]], dict[bytes, bytes]]]:
    """Two clients doing linearizable register ops and one writing fresh
    keys, for as long as the block runs."""
    stop = threading.Event()
    histories: list[list[Op]] = [[], []]
    acked: dict[bytes, bytes] = {}
    workers = [
        threading.Thread(target=client_worker, args=(endpoints, i, stop, histories[i]))
        for i in range(2)
    ]
    workers.append(threading.Thread(target=acked_writer, args=(endpoints, stop, acked)))
    for t in workers:
        t.start()
    try:
        yield histories, acked
    finally:
        stop.set()
        for t in workers:
            t.join(timeout=60)


def check_no_loss_and_linearizable(
    endpoints: list[str], histories: list[list[Op]], acked: dict[bytes, bytes]
) -> None:
    with Client(endpoints, timeout=10) as client:
        stored = dict(client.scan(b"w", b"x", limit=10_000))
    assert len(acked) > 20, f"too little progress: {len(acked)} writes"
    missing = {k for k, v in acked.items() if stored.get(k) != v}
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:5]}"
    ops = [op for h in histories for op in h]
    assert len([op for op in ops if not op.unknown]) > 20
    assert_linearizable(ops)


def placement(cluster, ask: list[int]) -> list[tuple[int, list[tuple[int, str]]]] | None:
    """(region id, [(store, role)]) for every region, from a live store."""
    for i in ask:
        reply = raw_request(cluster.addrs[i], "regions", {}, timeout=1.0)
        if reply is not None and reply.ok:
            return [
                (wire[0], [(s, role) for s, _peer, role in wire[4]])
                for wire, _leader in reply.result["regions"]
            ]
    return None


def store_counts(cluster, ask: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for _rid, peers in placement(cluster, ask) or []:
        for s, _role in peers:
            counts[s] = counts.get(s, 0) + 1
    return counts


@pytest.mark.slow
def test_joined_stores_take_regions_and_a_dead_stores_replicas_are_rebuilt(make_cluster) -> None:
    c = make_cluster(3, 3, "--max-store-down-time", "4s")
    with Client(c.endpoints(), timeout=10) as admin:
        for key in (b"lin-3", b"w000400", b"w001000", b"w002000", b"w004000"):
            admin.split(key)
    with under_load(c.endpoints()) as (histories, acked):
        c.join(4, 1)
        c.join(5, 2)
        live = [2, 3, 4, 5]
        # 18 replicas on 5 stores: the balancer may settle with the joined
        # stores at 4 and 2 (it moves only from a store a whole region above
        # the mean, 3.6, to one a whole region below), never lower.
        wait_for(
            "the joined stores to hold regions",
            lambda: min(store_counts(c, live).get(s, 0) for s in (4, 5)) >= 2,
            timeout=60,
        )
        c.kill(1)  # for good: it never comes back

        def fully_replicated() -> bool:
            regions = placement(c, live)
            return bool(regions) and all(
                len(peers) == 3 and all(s in live and role == VOTER for s, role in peers)
                for _rid, peers in regions
            )

        wait_for("every region back at 3 voters on live stores", fully_replicated, timeout=90)
    live_endpoints = [c.addrs[i] for i in live]
    check_no_loss_and_linearizable(live_endpoints, histories, acked)
    with Client(live_endpoints, timeout=10) as client:
        status = client.status()
    assert {s["id"]: s["state"] for s in status["stores"]}[1] == "down"


def membership_nemesis(cluster, seed: int, stop: threading.Event) -> None:
    """Kills and restarts, pauses, replica moves and splits, at random."""
    rng = random.Random(seed)
    with Client(cluster.endpoints(), timeout=8) as admin:
        while not stop.is_set():
            action = rng.choice(["kill", "pause", "move", "move", "split"])
            victim = rng.choice(cluster.ids)
            try:
                if action == "kill":
                    cluster.kill(victim)
                    stop.wait(rng.uniform(0.3, 1.0))
                    cluster.start(victim)
                elif action == "pause":
                    cluster.procs[victim].send_signal(signal.SIGSTOP)
                    stop.wait(rng.uniform(0.3, 1.0))
                    cluster.procs[victim].send_signal(signal.SIGCONT)
                elif action == "move":
                    region, _leader = rng.choice(admin.regions())
                    holders = {p.store_id for p in region.peers}
                    spare = [s for s in cluster.ids if s not in holders]
                    if spare:
                        admin.move_peer(region.id, rng.choice(sorted(holders)), rng.choice(spare))
                else:
                    admin.split(b"lin-%d~" % rng.randrange(6))
            except MultiraftError:
                pass  # a refused or timed-out admin step is part of the chaos
            stop.wait(rng.uniform(0.3, 1.0))


@pytest.mark.slow
def test_histories_stay_linearizable_while_replicas_move_under_faults(make_cluster) -> None:
    c = make_cluster(4, 3)
    stop = threading.Event()
    chaos = threading.Thread(target=membership_nemesis, args=(c, 7, stop))
    with under_load(c.endpoints()) as (histories, acked):
        chaos.start()
        try:
            stop.wait(20)
        finally:
            stop.set()
            chaos.join(timeout=60)
            for i in c.ids:  # leave no store paused or down
                c.procs[i].send_signal(signal.SIGCONT)
                if c.procs[i].poll() is not None:
                    c.start(i)
    check_no_loss_and_linearizable(c.endpoints(), histories, acked)
