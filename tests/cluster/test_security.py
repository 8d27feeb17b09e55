"""Secure clusters (CurveZMQ keys, roles, a replicated trust table), with
real store processes and the real client."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import zmq

from multiraft import Client
from multiraft.errors import AuthenticationFailed, PermissionDenied
from multiraft.protocol import wire
from multiraft.raft.types import Entry, Message, MessageType
from multiraft.security.keys import load_public
from multiraft.storage.engine import Engine
from multiraft.storage.peer_storage import PeerStorage
from multiraft.store.commands import PUT, WriteCommand, encode_writes
from multiraft.store.meta import cluster_id_of
from multiraft.transport import codec

from .harness import LocalCluster, raw_request, secure, wait_for

FORGED_TERM = 1000


def test_no_key_an_untrusted_key_or_a_wrong_store_key_get_a_clear_error(
    make_cluster, tmp_path: Path
) -> None:
    c = make_cluster(3, secure=True)
    with Client(c.endpoints(), timeout=10, **c.client_keys()) as admin:
        admin.put(b"k", b"v")
    stranger = c.make_key("stranger", "readwrite")  # made after the start: not trusted
    wrong = {addr: load_public(stranger.with_suffix(".key")).public for addr in c.endpoints()}
    attempts = [
        ({}, "requires a key"),
        ({"key": stranger, "cluster_keys": c.keys_dir}, "refused our key"),
        ({"key": c.keys_dir / "admin.key_secret", "cluster_keys": wrong}, "not the one it proves"),
    ]
    for keys, why in attempts:
        with Client(c.endpoints(), timeout=5, **keys) as client:
            for op in (lambda: client.get(b"k"), lambda: client.put(b"k", b"stolen")):
                with pytest.raises(AuthenticationFailed, match=why):
                    op()
    with Client(c.endpoints(), timeout=10, **c.client_keys()) as admin:
        assert admin.get(b"k") == b"v"


def test_roles_limit_what_a_key_may_do(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path / "c", 3, secure=True)
    c.root.mkdir()
    try:
        c.make_key("admin", "admin")
        c.make_key("reader", "readonly")
        c.make_key("writer", "readwrite")
        c.start_all()
        with (
            Client(c.endpoints(), timeout=10, **c.client_keys("admin")) as admin,
            Client(c.endpoints(), timeout=10, **c.client_keys("reader")) as reader,
            Client(c.endpoints(), timeout=10, **c.client_keys("writer")) as writer,
        ):
            writer.put(b"a", b"1")
            assert reader.get(b"a") == b"1"
            assert reader.scan(b"", b"") == [(b"a", b"1")]
            with pytest.raises(PermissionDenied, match="readonly may not put"):
                reader.put(b"a", b"2")
            with pytest.raises(PermissionDenied, match="readonly may not cas"):
                reader.cas(b"a", b"1", b"2")
            with pytest.raises(PermissionDenied, match="readwrite may not split"):
                writer.split(b"m")
            with pytest.raises(PermissionDenied, match="readwrite may not status"):
                writer.status()
            admin.split(b"m")
            assert len(admin.regions()) == 2
            assert admin.get(b"a") == b"1"
    finally:
        c.stop_all()


def test_a_client_key_cannot_inject_raft_messages(make_cluster) -> None:
    c = make_cluster(3, secure=True)
    with Client(c.endpoints(), timeout=10, **c.client_keys()) as admin:
        admin.put(b"k", b"v")
        leader = c.wait_leader(1)
        follower = next(i for i in c.ids if i != leader)
        forged = _forged_append(c, leader, follower)
        ctx = zmq.Context.instance()
        for target in c.ids:
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            curve = c.curve(target)
            assert curve is not None
            secure(sock, curve)
            sock.connect(f"tcp://{c.addrs[target]}")
            try:
                sock.send(forged)
                assert sock.poll(5000)
                refusal = codec.decode(sock.recv())
                assert isinstance(refusal, wire.Reply) and not refusal.ok
                assert refusal.result[0] == "PermissionDenied"
                assert "may not send store frames" in refusal.result[1]
            finally:
                sock.close(0)
        admin.put(b"after", b"ok")
        assert admin.get(b"forged") is None
        assert admin.get(b"k") == b"v"
    for i in c.ids:
        assert c.terminate(i) == 0
        engine = Engine(str(c.root / f"store-{i}"), sync=False)
        try:
            assert PeerStorage(engine, 1).hard_state.term < FORGED_TERM
        finally:
            engine.close()
    logs = "".join((c.root / f"store-{i}.log").read_text() for i in c.ids)
    assert "refused a store frame: role admin may not send store frames" in logs


def _forged_append(c: LocalCluster, leader: int, follower: int) -> bytes:
    """A valid MsgApp from store `leader` to `follower` at a huge term that
    commits a put of b"forged": what a follower would apply if it took it."""
    put = WriteCommand(PUT, 7, 1, 0, 1, b"forged", b"x")
    entry = Entry(FORGED_TERM, 10_000, data=encode_writes([put]))
    msg = Message(
        MessageType.APP, to=follower, frm=leader, term=FORGED_TERM, entries=[entry], commit=10_000
    )
    item = codec.RaftItem(1, (1, 1), msg)
    return codec.encode_peer_batch(codec.PeerBatch(cluster_id_of(c.initial), leader, [item]))


def test_an_untrusted_store_cannot_join_until_trusted_and_is_cut_off_when_removed(
    make_cluster,
) -> None:
    c = make_cluster(3, secure=True)
    c.ids.append(4)
    c.addrs[4] = f"127.0.0.1:{_free_port()}"
    c.joined[4] = c.addrs[1]
    secret = c.make_key("store-4", "store", 4)  # in the trusted dir, made after the start
    c.start(4)
    c.procs[4].wait(timeout=60)
    assert c.procs[4].returncode != 0
    assert "refused our key" in (c.root / "store-4.log").read_text()
    with Client(c.endpoints()[:3], timeout=10, **c.client_keys()) as admin:
        cert = load_public(secret.with_suffix(".key"))
        admin.trust_add(cert.public, "store", "store-4", 4)
        c.start(4)
        wait_for("store 4 up", lambda: _store_state(admin, 4) == "up", timeout=30)
        assert admin.trust_remove(cert.public)

        def removed_everywhere() -> bool:
            for i in (1, 2, 3):
                reply = raw_request(c.addrs[i], "trust_list", {}, 2.0, c.curve(i))
                assert reply is not None and reply.ok
                if not any(r["name"] == "store-4" and r["removed"] for r in reply.result):
                    return False
            return True

        wait_for("every store to learn the removal", removed_everywhere, timeout=30)
        wait_for("store 4 cut off", lambda: _store_state(admin, 4) != "up", timeout=30)
        assert c.procs[4].poll() is None  # refused, not crashed
    log = (c.root / "store-1.log").read_text()
    assert "untrusted key" in log


def _store_state(admin: Client, store_id: int) -> str | None:
    st = admin.status()
    return next((s["state"] for s in st["stores"] if s["id"] == store_id), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    """A TCP relay that records every byte going through it."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.addr = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.recorded = bytearray()
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                inbound, _ = self.listener.accept()
                outbound = socket.create_connection(self.target, timeout=5)
                self._socks += [inbound, outbound]
                for a, b in ((inbound, outbound), (outbound, inbound)):
                    threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                with self._lock:
                    self.recorded += data
                dst.sendall(data)

    def close(self) -> None:
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()


@pytest.mark.parametrize("secure_mode", [False, True], ids=["plain", "curve"])
def test_bytes_on_the_wire_are_not_plain_text(make_cluster, secure_mode: bool) -> None:
    c = make_cluster(1, 1, secure=secure_mode)
    relay = Relay(c.addrs[1])
    secret_value = b"attack-at-dawn-" * 4
    try:
        curve = c.curve(1)
        put = {
            "region": 1,
            "epoch": [1, 1],
            "key": b"plan",
            "value": secret_value,
            "client": 42,
            "seq": 1,
            "acked": 0,
        }
        reply = raw_request(relay.addr, "put", put, 5.0, curve)
        assert reply is not None and reply.ok, reply
        got = raw_request(
            relay.addr, "get", {"region": 1, "epoch": [1, 1], "key": b"plan"}, 5.0, curve
        )
        assert got is not None and got.ok and got.result == secret_value
    finally:
        relay.close()
    assert len(relay.recorded) > 2 * len(secret_value)
    assert (secret_value in relay.recorded) is not secure_mode


def _free_base_port() -> int:
    """A port P with P+1..P+3 free (cluster up listens there)."""
    for _ in range(50):
        base = _free_port()
        try:
            with contextlib.ExitStack() as stack:
                for i in (1, 2, 3):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
    raise AssertionError("no free run of ports")


def test_cluster_up_is_secure_and_the_cli_uses_its_keys(tmp_path: Path) -> None:
    """The key lines `cluster up` prints work; MULTIRAFT_CLUSTER alone works
    too for the user who started it (INTERFACE.md asks no more), through
    the keys it recorded in that user's config; nobody else gets in."""
    cli = [sys.executable, "-m", "multiraft.cli.main"]
    base = _free_base_port()
    data = tmp_path / "data"
    config = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    up = subprocess.Popen(
        [*cli, "cluster", "up", "--data-dir", str(data), "--base-port", str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **config},
    )
    try:
        assert up.stdout is not None
        env: dict[str, str] = {}
        while len(env) < 3:
            line = up.stdout.readline()
            assert line, "cluster up ended early"
            name, sep, value = line.strip().partition("=")
            if sep and name.startswith("MULTIRAFT_"):
                env[name] = value
        assert Path(env["MULTIRAFT_KEY"]).name == "admin.key_secret"
        full = {**os.environ, **config, **env}

        def run(*args: str, **extra: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [*cli, *args], env={**full, **extra}, capture_output=True, text=True, timeout=60
            )

        assert run("kv", "put", "hello", "world", "--timeout", "20").returncode == 0
        assert run("kv", "get", "hello").stdout.strip() == "world"
        keys = tmp_path / "keys"
        assert (
            run("keys", "generate", "reader", "--out", str(keys), "--role", "readonly").returncode
            == 0
        )
        reader = str(keys / "reader.key_secret")
        refused = run("kv", "get", "hello", MULTIRAFT_KEY=reader)
        assert refused.returncode == 3 and "AuthenticationFailed" in refused.stderr
        assert run("trust", "add", str(keys / "reader.key")).returncode == 0
        wait_for(
            "the reader to be trusted everywhere",
            lambda: run("kv", "get", "hello", MULTIRAFT_KEY=reader).stdout.strip() == "world",
        )
        denied = run("kv", "put", "hello", "there", MULTIRAFT_KEY=reader)
        assert denied.returncode == 3
        assert "PermissionDenied: role readonly may not put" in denied.stderr
        assert "reader" in run("trust", "list").stdout
        only_cluster = {k: v for k, v in full.items() if k not in env or k == "MULTIRAFT_CLUSTER"}
        alone = subprocess.run(
            [*cli, "kv", "get", "hello"], env=only_cluster, capture_output=True, text=True
        )
        assert alone.stdout.strip() == "world", alone.stderr
        registry = tmp_path / "config" / "multiraft" / "clusters.json"
        assert registry.stat().st_mode & 0o777 == 0o600
        stranger = {**only_cluster, "XDG_CONFIG_HOME": str(tmp_path / "elsewhere")}
        plain = subprocess.run(
            [*cli, "kv", "get", "hello"], env=stranger, capture_output=True, text=True
        )
        assert plain.returncode == 3 and "requires a key" in plain.stderr
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
    assert up.returncode == 0


def test_a_plain_store_among_secure_ones_is_refused_with_a_clear_error(make_cluster) -> None:
    c = make_cluster(3, secure=True)
    c.terminate(3)
    keys_dir, c.keys_dir = c.keys_dir, None  # store 3 comes back without keys
    c.start(3)
    c.keys_dir = keys_dir

    def logged(store_id: int, text: str) -> bool:
        return text in (c.root / f"store-{store_id}.log").read_text()

    wait_for("store 3 to say its peers want keys", lambda: logged(3, "requires a key (CURVE)"))
    wait_for("store 1 to say store 3 is plain", lambda: logged(1, "runs in plain mode"))
    with Client(c.endpoints()[:2], timeout=10, **c.client_keys()) as admin:
        admin.put(b"still", b"served")  # two secure stores are a majority
        assert admin.get(b"still") == b"served"
