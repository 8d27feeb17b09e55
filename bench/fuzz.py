"""Malformed frames at a secure 3-store cluster under load.

A local cluster (CurveZMQ on, fsync on) serves a steady load of puts while
fuzzing processes send it frames from four kinds of sender: an untrusted key
(its handshakes are refused), a keyless plain socket (refused), a trusted
client key (readwrite) and a trusted store key of a store that is not a
member (store 99). The frames: random bytes; every frame kind (requests,
request batches, replies, Raft batches with entries, heartbeats and gossip,
snapshot chunks and acks, unknown kinds, wrong versions) built valid and then
mutated (a field replaced by a value of another type or range, or the
encoding truncated, extended or bit-flipped); and a few oversize frames.

A store key is trusted to speak Raft truthfully (Raft does not tolerate
Byzantine members); its frames here name a store that is no member, claim
another store's id, another cluster or unknown regions, and must be refused
or ignored like everyone else's.

At the end: every store still runs, every acknowledged write reads back
exactly, the load went on during the fuzzing, and each store's RSS before
and after.

    python bench/fuzz.py                      # 1,000,000 frames
    python bench/fuzz.py --frames 20000 --json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import zmq

from multiraft import Client
from multiraft.bench.cluster import LocalCluster
from multiraft.errors import MultiraftError
from multiraft.protocol import wire
from multiraft.raft.types import Entry, Message, MessageType
from multiraft.security.keys import generate, load_key_pair, load_publics
from multiraft.store.meta import cluster_id_of
from multiraft.transport import codec

SENDERS = ("untrusted", "plain", "client", "store")
OVERSIZE = wire.MAX_FRAME_SIZE + 1


def templates(cluster_id: int, from_store: int) -> list[bytes]:
    """One valid frame of every kind a store may be sent."""
    put = {"region": 1, "epoch": [1, 1], "key": b"k", "value": b"v", "client": 9, "seq": 1}
    entry = Entry(7, 5, data=msgpack.packb([1, [[1, 9, 1, 0, 1, b"k", b"v", None]]]))
    app = Message(MessageType.APP, to=1, frm=2, term=7, log_term=7, index=4, entries=[entry])
    vote = Message(MessageType.VOTE, to=1, frm=2, term=8, log_term=7, index=5)
    item = codec.RaftItem(1, (1, 1), app, [1, b"", b"", [1, 1], [[1, 1, "voter"]]])
    gossip = {"regions": [], "stores": {1: "127.0.0.1:1"}, "stats": {}, "trust": {}}
    batch = codec.PeerBatch(
        cluster_id, from_store, [item, codec.RaftItem(1, (1, 1), vote)], gossip, [1, 2, 1, 7, 5, 0]
    )
    chunk = codec.SnapChunk(cluster_id, from_store, 1, 3, 1, [b"k", b"v"], False)
    return [
        wire.encode_request(wire.Request(1, "put", put)),
        wire.encode_request(wire.Request(2, "get", {"region": 1, "epoch": [1, 1], "key": b"k"})),
        wire.encode_request(wire.Request(3, "split", {"region": 1, "epoch": [1, 1], "key": b"m"})),
        wire.encode_request(wire.Request(4, "join", {"store_id": 99, "addr": "127.0.0.1:9"})),
        wire.encode_request(wire.Request(5, "trust_add", {"key": "x" * 40, "role": "admin"})),
        wire.encode_batch(wire.KIND_REQUESTS, [wire.pack_request(wire.Request(6, "regions", {}))]),
        wire.encode_reply(wire.Reply(1, True, None)),
        codec.encode_peer_batch(batch),
        codec.encode_snap_chunk(chunk),
        codec.encode_snap_ack(codec.SnapAck(cluster_id, from_store, 3, 1, True)),
    ]


def random_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            True,
            -1,
            0,
            2**63,
            -(2**63),
            rng.randrange(1 << 32),
            3.5,
            "",
            "x" * rng.randrange(100),
            b"\xff" * rng.randrange(100),
            [],
            [1] * rng.randrange(20),
            {},
            {"a": 1},
        ]
    )


def mutate_structure(obj: Any, rng: random.Random) -> Any:
    """`obj` with one node somewhere inside replaced by a random value."""
    if isinstance(obj, list) and obj and rng.random() < 0.8:
        i = rng.randrange(len(obj))
        return [*obj[:i], mutate_structure(obj[i], rng), *obj[i + 1 :]]
    if isinstance(obj, dict) and obj and rng.random() < 0.8:
        k = rng.choice(list(obj))
        return {**obj, k: mutate_structure(obj[k], rng)}
    return random_value(rng)


def fuzz_frame(tpl: list[bytes], rng: random.Random) -> bytes:
    frame = rng.choice(tpl)
    how = rng.randrange(6)
    if how == 0:
        return os.urandom(rng.randrange(2000))
    if how == 1:  # a field of another type or range
        body = msgpack.unpackb(frame[2:], strict_map_key=False)
        return frame[:2] + msgpack.packb(mutate_structure(body, rng), use_bin_type=True)
    if how == 2:
        return frame[: rng.randrange(len(frame))]
    if how == 3:
        return frame + os.urandom(rng.randrange(1, 64))
    if how == 4:  # flipped bits
        b = bytearray(frame)
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b)
    return bytes([rng.randrange(256), rng.randrange(256)]) + frame[2:]  # version, kind


def sender(args: tuple[str, list[str], str, int, int, int]) -> dict[str, int]:
    """One fuzzing process: `frames` frames as `who`, round robin over the stores."""
    who, addrs, keys_dir, cluster_id, frames, seed = args
    rng = random.Random(seed)
    ctx = zmq.Context()
    socks = []
    publics = {c.addr: c.public for c in load_publics(keys_dir) if c.role == "store"}
    for addr in addrs:
        s = ctx.socket(zmq.DEALER)
        # What trusted senders queued reaches the stores before the sender
        # exits; refused ones never connect, so nothing of theirs would.
        s.setsockopt(zmq.LINGER, 0 if who in ("plain", "untrusted") else 30_000)
        s.setsockopt(zmq.SNDHWM, 1000)
        if who != "plain":
            pair = load_key_pair(Path(keys_dir) / f"fuzz-{who}.key_secret")
            s.curve_serverkey = publics[addr].encode()
            s.curve_publickey = pair.public.encode()
            s.curve_secretkey = pair.secret.encode()
        s.connect(f"tcp://{addr}")
        socks.append(s)
    tpl = templates(cluster_id if rng.random() < 0.9 else cluster_id + 1, 99)
    sent = dropped = 0
    for i in range(frames):
        frame = fuzz_frame(tpl, rng) if i % 50_000 != 49_999 else b"\x01\x02" + bytes(OVERSIZE)
        try:
            socks[i % len(socks)].send(frame, zmq.NOBLOCK)
            sent += 1
        except zmq.Again:
            dropped += 1  # refused senders never connect: ZeroMQ queues nothing
            if dropped % 1000 == 0:
                time.sleep(0.01)
        if i % 200 == 0:
            for s in socks:  # drain replies so the stores' queues to us stay short
                while s.poll(0):
                    s.recv()
    for s in socks:
        s.close()
    ctx.term()
    return {"sent": sent, "not_queued": dropped}


class Load:
    """Puts of fresh keys, each acknowledged one remembered."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.acked: dict[bytes, bytes] = {}
        self.errors = 0
        self.stop = threading.Event()
        self._cluster = cluster
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        with Client(self._cluster.endpoints, timeout=5, **self._cluster.client_keys) as c:
            i = 0
            while not self.stop.is_set():
                key, value = b"load-%08d" % i, os.urandom(16)
                try:
                    c.put(key, value)
                    self.acked[key] = value
                except MultiraftError:
                    self.errors += 1
                i += 1

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(timeout=60)


def log_kinds(logs: str) -> dict[str, int]:
    """How often each kind of log line came (its text up to the first
    detail), the ten most frequent."""
    kinds: dict[str, int] = {}
    for line in logs.splitlines():
        text = line.split(": ", 1)[-1]
        kind = re.split(r"[:(]| \d", text, maxsplit=1)[0].strip()[:70]
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:10])


def rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--frames", type=int, default=1_000_000, help="frames over all senders")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    cluster = LocalCluster(secure=True)
    assert cluster.keys_dir is not None
    generate("fuzz-client", cluster.keys_dir, "readwrite")
    generate("fuzz-store", cluster.keys_dir, "store", 99, "127.0.0.1:9")
    generate("fuzz-untrusted", Path(cluster.root) / "untrusted", "readwrite")
    os.replace(
        Path(cluster.root) / "untrusted" / "fuzz-untrusted.key_secret",
        cluster.keys_dir / "fuzz-untrusted.key_secret",
    )  # its public half stays out of the trusted directory
    with cluster:
        result = run(cluster, a.frames, a.processes, a.seed)
    if a.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>24}: {v}")
    sys.exit(0 if result["ok"] else 1)


def run(cluster: LocalCluster, frames: int, processes: int, seed: int) -> dict[str, Any]:
    pids = cluster.pids()
    rss_before = {sid: rss_kb(pid) for sid, pid in pids.items()}
    load = Load(cluster)
    time.sleep(1.0)
    acked_before = len(load.acked)
    cid = cluster_id_of(cluster.addrs)
    per = frames // (len(SENDERS) * processes)
    jobs = [
        (who, cluster.endpoints, str(cluster.keys_dir), cid, per, seed * 1000 + i)
        for i, who in enumerate(SENDERS * processes)
    ]
    t = time.monotonic()
    with mp.get_context("spawn").Pool(processes) as pool:
        counts = pool.map(sender, jobs)
    elapsed = time.monotonic() - t
    acked_during = len(load.acked) - acked_before
    time.sleep(2.0)
    load.finish()
    alive = {sid: cluster.procs[sid].poll() is None for sid in pids}
    with Client(cluster.endpoints, timeout=10, **cluster.client_keys) as c:
        wrong = [k for k, v in load.acked.items() if c.get(k) != v]
    logs = "".join((cluster.root / f"store-{sid}.log").read_text(errors="replace") for sid in pids)
    held = sum(int(n) for n in re.findall(r"\((\d+) more like it not logged\)", logs))
    sent = sum(c["sent"] for c in counts)
    result = {
        "frames": per * len(jobs),
        "handed_to_zeromq": sent,
        "not_queued": sum(c["not_queued"] for c in counts),
        "seconds": round(elapsed, 1),
        "frames_per_s": round(per * len(jobs) / elapsed),
        "stores_alive": sum(alive.values()),
        "crashes": len(alive) - sum(alive.values()),
        "acked_writes": len(load.acked),
        "acked_during_fuzz": acked_during,
        "load_errors": load.errors,
        "lost_or_changed": len(wrong),
        "log_lines": logs.count("\n"),
        "log_kinds": log_kinds(logs),
        "refusals_not_logged": held,
        "rss_kb_before": rss_before,
        "rss_kb_after": {sid: rss_kb(pid) for sid, pid in pids.items() if alive[sid]},
    }
    result["ok"] = result["crashes"] == 0 and not wrong and acked_during > 0
    return result


if __name__ == "__main__":
    main()
