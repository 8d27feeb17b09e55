"""A real 3-store cluster (and a 5-store one) through the real client and CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest

from multiraft import Client
from multiraft.protocol import wire
from multiraft.transport import codec

from .harness import raw_request, wait_for


def cli(cluster, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MULTIRAFT_CLUSTER=",".join(cluster.endpoints()))
    return subprocess.run(
        [sys.executable, "-m", "multiraft.cli.main", *args],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_all_operations_through_client_and_cli(make_cluster) -> None:
    c = make_cluster(3)
    with Client(c.endpoints(), timeout=10) as client:
        client.put(b"a", b"1")
        client.put(b"b", b"2")
        client.put(b"c", b"3")
        assert client.get(b"a") == b"1"
        assert client.get(b"zz") is None
        client.delete(b"b")
        assert client.get(b"b") is None
        assert client.scan(b"a", b"z") == [(b"a", b"1"), (b"c", b"3")]
        assert client.scan(b"", b"", limit=1) == [(b"a", b"1")]
        assert client.cas(b"a", b"1", b"10") is True
        assert client.cas(b"a", b"1", b"11") is False
        assert client.cas(b"new", None, b"x") is True
        assert client.cas(b"new", b"x", None) is True
        assert client.get(b"a") == b"10" and client.get(b"new") is None

    assert cli(c, "kv", "put", "hello", "world").returncode == 0
    got = cli(c, "kv", "get", "hello")
    assert (got.returncode, got.stdout.strip()) == (0, "world")
    assert cli(c, "kv", "get", "absent").returncode == 1
    scan = cli(c, "kv", "scan", "a", "d")
    assert scan.returncode == 0 and "10" in scan.stdout and "3" in scan.stdout


def test_leader_killed_new_leader_serves_nothing_lost_and_it_catches_up(make_cluster) -> None:
    c = make_cluster(3)
    acked = {}
    with Client(c.endpoints(), timeout=15) as client:
        for i in range(100):
            client.put(b"k%03d" % i, b"v%d" % i)
            acked[b"k%03d" % i] = b"v%d" % i
        old = c.wait_leader(1)
        c.kill(old)
        for i in range(100, 150):  # served by the new leader
            client.put(b"k%03d" % i, b"v%d" % i)
            acked[b"k%03d" % i] = b"v%d" % i
        new = c.wait_leader(1)
        assert new != old
        assert dict(client.scan(b"", b"")) == acked

        c.start(old)  # restart from its data dir alone
        wait_for("the restarted store to answer", lambda: raw_request(c.addrs[old], "regions", {}))

        # A transfer is best effort (aborted after an election timeout if
        # the target is still catching up): ask until it happens.
        def moved() -> bool:
            if c.leader_of(1, [old]) == old:
                return True
            client.transfer_leader(1, old)
            return False

        wait_for("leadership to move back", moved)
        # Reads are served by the leader: the restarted store has caught up.
        assert dict(client.scan(b"", b"")) == acked


def test_five_stores_keep_serving_with_two_down(make_cluster) -> None:
    c = make_cluster(5, replicas=5)
    with Client(c.endpoints(), timeout=15) as client:
        client.put(b"before", b"1")
        leader = c.wait_leader(1)
        down = [i for i in c.ids if i != leader][:1] + [leader]
        for i in down:
            c.kill(i)
        client.put(b"after", b"2")
        assert client.get(b"before") == b"1"
        assert client.get(b"after") == b"2"


def _cas_args(seq: int, client_id: int, expected: bytes, new: bytes) -> dict:
    return {
        "region": 1,
        "epoch": [1, 1],
        "key": b"x",
        "expected": expected,
        "new": new,
        "client": client_id,
        "seq": seq,
        "acked": seq,
    }


def test_retried_cas_is_applied_once(make_cluster) -> None:
    c = make_cluster(3)
    with Client(c.endpoints(), timeout=10) as client:
        client.put(b"x", b"0")
        leader = c.addrs[c.wait_leader(1)]
        first = raw_request(leader, "cas", _cas_args(7, 4242, b"0", b"1"))
        assert first is not None and first.ok and first.result is True
        client.put(b"x", b"0")  # someone else resets it
        # The "lost reply" retry: same client id and seq. Applying it again
        # would set x to 1; it must be answered from the session instead.
        retry = raw_request(leader, "cas", _cas_args(7, 4242, b"0", b"1"))
        assert retry is not None and retry.ok and retry.result is True
        assert client.get(b"x") == b"0"


def test_garbage_on_the_port_does_not_hurt(make_cluster) -> None:
    import zmq

    c = make_cluster(3)
    with Client(c.endpoints(), timeout=10) as client:
        client.put(b"keep", b"me")
        leader = c.wait_leader(1)
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://{c.addrs[leader]}")
        try:
            sock.send(os.urandom(1000))
            sock.send(b"\x01\x02" + msgpack.packb({"not": "a request"}))
            sock.send(b"\x01\x01" + msgpack.packb([0, 1, [[1, [1, 1], [99] * 12]], {}]))
            sock.send_multipart([b"a", b"b", b"c"])
            bad_region = wire.Request(5, "get", {"region": 999, "epoch": [1, 1], "key": b"k"})
            sock.send(wire.encode_request(bad_region))
            assert sock.poll(5000)
            reply = codec.decode(sock.recv())
            assert isinstance(reply, wire.Reply) and not reply.ok
            assert reply.result[0] == "RegionNotFound"
            wrong_type = wire.Request(
                6,
                "put",
                {
                    "region": 1,
                    "epoch": [1, 1],
                    "key": "str",
                    "value": 5,
                    "client": 1,
                    "seq": 1,
                    "acked": 1,
                },
            )
            sock.send(wire.encode_request(wrong_type))
            assert sock.poll(5000)
            assert codec.decode(sock.recv()).result[0] == "InvalidRequest"
        finally:
            sock.close(0)
        huge = zmq.Context.instance().socket(zmq.DEALER)
        huge.setsockopt(zmq.LINGER, 0)
        huge.connect(f"tcp://{c.addrs[leader]}")
        try:
            huge.send(b"\x01\x02" + b"\x00" * (100 * 1024 * 1024))
        finally:
            huge.close(0)
        assert set(c.alive()) == set(c.ids)
        client.put(b"still", b"serving")
        assert client.get(b"keep") == b"me"
        assert client.get(b"still") == b"serving"


def test_sigterm_exits_cleanly_and_restarts(make_cluster) -> None:
    c = make_cluster(3)
    with Client(c.endpoints(), timeout=15) as client:
        client.put(b"durable", b"yes")
        for i in c.ids:
            assert c.terminate(i) == 0
        for i in c.ids:
            c.start(i)
        c.wait_leader(1)
        assert client.get(b"durable") == b"yes"


@pytest.mark.slow
def test_random_sigkills_lose_no_acknowledged_write(make_cluster) -> None:
    import random
    import time

    c = make_cluster(3)
    rng = random.Random(7)
    acked: dict[bytes, bytes] = {}
    with Client(c.endpoints(), timeout=20) as client:
        for round_ in range(8):
            victim = rng.choice(c.ids)
            deadline = time.monotonic() + rng.uniform(0.2, 1.0)
            i = 0
            while time.monotonic() < deadline:
                key = b"r%d-%d" % (round_, i)
                client.put(key, key)
                acked[key] = key
                i += 1
            c.kill(victim)
            key = b"after-kill-%d" % round_
            client.put(key, b"x")
            acked[key] = b"x"
            c.start(victim)
        c.wait_leader(1)
        assert dict(client.scan(b"", b"")) == acked


def test_sigkill_of_every_store_just_after_the_writes_loses_none(make_cluster) -> None:
    """Applied writes wait up to a second in each store's apply buffer
    before they reach LMDB: a kill -9 of every store inside that second
    loses none of them (a restart applies them again from the Raft log,
    whose GC, low here, never passes what is on disk)."""
    c = make_cluster(3, 3, "--raft-log-gc-threshold", "40")
    acked: dict[bytes, bytes] = {}
    with Client(c.endpoints(), timeout=20) as client:
        for i in range(200):
            key = b"k%03d" % i
            client.put(key, b"v%d" % i)
            acked[key] = b"v%d" % i
        assert client.cas(b"k000", b"v0", b"swapped")
        acked[b"k000"] = b"swapped"
        for i in c.ids:
            c.kill(i)
        for i in c.ids:
            c.start(i)
        c.wait_leader(1)
        assert dict(client.scan(b"", b"")) == acked


def test_follower_behind_a_compacted_log_catches_up_by_snapshot(make_cluster) -> None:
    c = make_cluster(3, 3, "--raft-log-gc-threshold", "40")
    with Client(c.endpoints(), timeout=15) as client:
        client.put(b"first", b"1")
        leader = c.wait_leader(1)
        lagging = next(i for i in c.ids if i != leader)
        c.kill(lagging)
        expected = {b"first": b"1"}
        for i in range(200):  # far more entries than the leader keeps
            client.put(b"s%03d" % i, b"%d" % i)
            expected[b"s%03d" % i] = b"%d" % i
        c.start(lagging)

        def moved() -> bool:
            if c.leader_of(1, [lagging]) == lagging:
                return True
            client.transfer_leader(1, lagging)
            return False

        wait_for("the lagging store to catch up and lead", moved)
        assert dict(client.scan(b"", b"")) == expected


def store_start(*args: str) -> subprocess.CompletedProcess:
    """`multiraft store start ARGS` run to its exit (a refused start)."""
    cmd = [sys.executable, "-m", "multiraft.cli.main", "store", "start", *args]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)


def test_a_data_dir_of_another_store_is_refused(make_cluster, tmp_path) -> None:
    c = make_cluster(3)
    assert c.terminate(1) == 0
    data_dir = str(c.root / "store-1")
    wrong = store_start("--store-id", "2", "--addr", c.addrs[1], "--data-dir", data_dir)
    assert wrong.returncode != 0
    assert "belongs to store 1" in wrong.stderr
    empty = store_start("--store-id", "9", "--addr", c.addrs[1], "--data-dir", str(tmp_path / "e"))
    assert empty.returncode != 0
    assert "--initial-cluster" in empty.stderr


def _put(i: int) -> dict:
    key = b"flood-%d" % i
    return {
        "region": 1,
        "epoch": [1, 1],
        "key": key,
        "value": key,
        "client": 77,
        "seq": i + 1,
        "acked": 0,
    }


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_flood_of_requests_and_connections_gets_server_busy_with_memory_bounded(
    make_cluster,
) -> None:
    """2,000 connections and 163,840 puts sent at once: every request is
    answered (ok, or ServerBusy once the store holds too many), the store's
    memory stays bounded, and a normal client is served throughout."""
    import zmq

    c = make_cluster(3)
    with Client(c.endpoints(), timeout=10) as client:
        client.put(b"k", b"v")
        leader = c.wait_leader(1)
        rss_before = _rss_kb(c.procs[leader].pid)
        ctx = zmq.Context()
        ctx.set(zmq.MAX_SOCKETS, 4096)
        socks = []
        try:
            get = {"region": 1, "epoch": [1, 1], "key": b"k"}
            for _ in range(2000):
                s = ctx.socket(zmq.DEALER)
                s.setsockopt(zmq.LINGER, 0)
                s.connect(f"tcp://{c.addrs[leader]}")
                s.send(wire.encode_request(wire.Request(1, "get", get)))
                socks.append(s)
            flood = ctx.socket(zmq.DEALER)
            flood.setsockopt(zmq.LINGER, 0)
            flood.setsockopt(zmq.RCVHWM, 0)
            flood.connect(f"tcp://{c.addrs[leader]}")
            socks.append(flood)
            sent = 40 * wire.MAX_BATCH_REQUESTS
            for b in range(40):
                reqs = [
                    wire.pack_request(wire.Request(b * 10_000 + i, "put", _put(b * 10_000 + i)))
                    for i in range(wire.MAX_BATCH_REQUESTS)
                ]
                flood.send(wire.encode_batch(wire.KIND_REQUESTS, reqs))
            assert client.get(b"k") == b"v"  # served while the flood is in
            kinds: dict[str, int] = {}
            answered = 0
            deadline = time.monotonic() + 60
            while answered < sent:
                assert time.monotonic() < deadline, f"{answered} of {sent} answered: {kinds}"
                if not flood.poll(1000):
                    continue
                reply = codec.decode(flood.recv())
                for r in reply.replies if isinstance(reply, wire.ReplyBatch) else [reply]:
                    kind = "ok" if r.ok else r.result[0]
                    kinds[kind] = kinds.get(kind, 0) + 1
                    answered += 1
            assert answered == sent
            assert kinds.get("ok", 0) > 0 and kinds.get("ServerBusy", 0) > 0, kinds
            # The load may cost the leader its lease (a 50 ms tick here):
            # NotLeader is an answer too, which the client retries.
            assert set(kinds) <= {"ok", "ServerBusy", "NotLeader"}, kinds
            for s in socks[:-1]:
                assert s.poll(10_000), "a connection of the 2,000 got no answer"
                assert isinstance(codec.decode(s.recv()), wire.Reply)
            rss_after = _rss_kb(c.procs[leader].pid)
            assert rss_after < rss_before + 300_000, (rss_before, rss_after)
            print(f"flood: {kinds}, RSS {rss_before} -> {rss_after} KiB")
        finally:
            for s in socks:
                s.close(0)
            ctx.term()
        assert client.get(b"k") == b"v"
    assert set(c.alive()) == set(c.ids)
