"""Quiet regions in real store processes: idle regions go quiet on every
store, any kind of request wakes one, and the regions a killed or paused
store led get new leaders on live stores without losing a write."""

from __future__ import annotations

import signal
import time

from multiraft import Client

from .harness import LocalCluster, raw_request, wait_for

SPLITS = [b"d", b"h", b"m", b"r", b"w"]


def quiet_counts(c: LocalCluster) -> dict[int, tuple[int, int]]:
    """store -> (replicas, quiet replicas), as each live store says of itself."""
    out = {}
    for i in c.alive():
        reply = raw_request(c.addrs[i], "status", {}, 1.0, c.curve(i))
        if reply is None or not reply.ok:
            continue
        me = next(s for s in reply.result["stores"] if s["id"] == i)
        out[i] = (me["regions"], me.get("quiet") or 0)
    return out


def all_quiet(c: LocalCluster) -> bool:
    counts = quiet_counts(c)
    return len(counts) == len(c.alive()) and all(n == q > 0 for n, q in counts.values())


def test_a_quiet_region_wakes_for_every_kind_of_request(make_cluster) -> None:
    c = make_cluster(3)
    with Client(c.endpoints(), timeout=20) as client:
        client.split_many(SPLITS)
        client.put(b"k", b"before")
        wait_for("every region quiet", lambda: all_quiet(c), timeout=30)
        region = next(r for r, _ in client.regions() if r.contains(b"k"))
        leader = c.wait_leader(region.id)
        other = next(i for i in c.ids if i != leader)
        ops = {
            "put": lambda: client.put(b"k", b"after"),
            "get": lambda: client.get(b"k"),
            "scan": lambda: client.scan(b"h", b"m"),
            "cas": lambda: client.cas(b"k", expected=b"after", new=b"again"),
            "split": lambda: client.split(b"ka"),
            "remove-peer": lambda: client.remove_peer(region.id, other),
            "add-peer": lambda: client.add_peer(region.id, other),
            "transfer-leader": lambda: client.transfer_leader(region.id, other),
        }
        for name, op in ops.items():
            wait_for(f"every region quiet before {name}", lambda: all_quiet(c), timeout=30)
            start = time.monotonic()
            op()
            print(f"first {name} on a quiet region: {(time.monotonic() - start) * 1000:.1f} ms")
        assert client.get(b"k") == b"again"
        # transfer_leader returns once the leader took the request; the
        # hand-over itself completes a moment later.
        wait_for(f"store {other} to lead", lambda: c.leader_of(region.id) == other, timeout=20)
        wait_for("every region quiet again", lambda: all_quiet(c), timeout=30)


def test_the_regions_of_a_killed_leader_get_new_leaders_and_lose_nothing(make_cluster) -> None:
    c = make_cluster(3)
    with Client(c.endpoints(), timeout=20) as client:
        client.split_many(SPLITS)
        written = {bytes([k]) + b"-key": b"v%d" % k for k in range(ord("a"), ord("z"))}
        for k, v in written.items():
            client.put(k, v)
        wait_for("every region quiet", lambda: all_quiet(c), timeout=30)
        victim = c.wait_leader(1)
        c.kill(victim)
        start = time.monotonic()
        led_by_live = lambda: all(  # noqa: E731
            leader is not None and leader != victim for _, leader in client.regions()
        )
        wait_for("a live leader for every region", led_by_live, timeout=20)
        for k in written:
            client.put(k, written[k] + b"+")
        print(f"every region led and writable {time.monotonic() - start:.1f} s after the kill")
        assert dict(client.scan(b"", b"")) == {k: v + b"+" for k, v in written.items()}


def test_a_paused_leader_is_replaced_and_serves_nothing_stale(make_cluster) -> None:
    c = make_cluster(3)
    with Client(c.endpoints(), timeout=20) as client:
        client.put(b"k", b"old")
        wait_for("every region quiet", lambda: all_quiet(c), timeout=30)
        paused = c.wait_leader(1)
        c.procs[paused].send_signal(signal.SIGSTOP)
        try:
            wait_for(
                "another leader",
                lambda: c.leader_of(1, ask=[i for i in c.ids if i != paused]),
                timeout=20,
            )
            client.put(b"k", b"new")
        finally:
            c.procs[paused].send_signal(signal.SIGCONT)
        # The paused store still believes it leads a quiet region; asked
        # first, it must not answer from its old state.
        with Client([c.addrs[paused]], timeout=20) as direct:
            assert direct.get(b"k") == b"new"
