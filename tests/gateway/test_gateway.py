"""The Redis gateway as users meet it: `multiraft redis` in front of real
stores, driven by redis-py (and redis-cli when it is installed)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from multiraft.bench.cluster import free_ports
from multiraft.verify.history import Op
from tests.cluster.harness import LocalCluster, wait_for
from tests.verify.assertions import assert_linearizable


class GatewayProcess:
    def __init__(
        self, cluster: LocalCluster, root: Path, password: str | None = None, *extra: str
    ) -> None:
        self.port = free_ports(1)[0]
        self.password = password
        extra = (*(["--requirepass", password] if password else []), *extra)
        cmd = [
            sys.executable, "-m", "multiraft.cli.main", "redis",
            "--listen", f"127.0.0.1:{self.port}", "--cluster", ",".join(cluster.endpoints()),
            "--log-level", "warning", *extra,
        ]  # fmt: skip
        self.log = root / f"gateway-{self.port}.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        try:
            wait_for("the gateway to answer PING", self._pings, timeout=20)
        except BaseException:
            self.stop()  # not yet in the fixture's list: stop it here
            raise

    def _pings(self) -> bool:
        try:
            return bool(self.client(socket_timeout=1).ping())
        except redis.ConnectionError:
            return False

    def client(self, **kw: object) -> redis.Redis:
        kw = {"socket_timeout": 20, "password": self.password, **kw}
        return redis.Redis(port=self.port, **kw)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start gateways on demand in front of one 3-store cluster; every
    process goes with the test."""
    cluster = LocalCluster(tmp_path / "cluster", 3)
    cluster.root.mkdir()
    made: list[GatewayProcess] = []

    def make(password: str | None = None, *extra: str) -> GatewayProcess:
        made.append(GatewayProcess(cluster, tmp_path, password, *extra))
        return made[-1]

    try:
        cluster.start_all()
        yield make
    finally:
        for g in made:
            g.stop()
        cluster.stop_all()


class Model:
    """What Redis answers, for the commands the gateway serves."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def apply(self, cmd: list[bytes]) -> object:
        return getattr(self, cmd[0].decode().lower())(*cmd[1:])

    def set(self, k: bytes, v: bytes) -> object:
        self.data[k] = v
        return b"OK"

    def get(self, k: bytes) -> object:
        return self.data.get(k)

    def setnx(self, k: bytes, v: bytes) -> object:
        if k in self.data:
            return 0
        self.data[k] = v
        return 1

    def delete(self, *keys: bytes) -> object:
        return sum(1 for k in dict.fromkeys(keys) if self.data.pop(k, None) is not None)

    def exists(self, *keys: bytes) -> object:
        return sum(1 for k in keys if k in self.data)

    def incrby(self, k: bytes, by: bytes) -> object:
        self.data[k] = b"%d" % (int(self.data.get(k, b"0")) + int(by))
        return int(self.data[k])

    def append(self, k: bytes, v: bytes) -> object:
        self.data[k] = self.data.get(k, b"") + v
        return len(self.data[k])

    def strlen(self, k: bytes) -> object:
        return len(self.data.get(k, b""))

    def mget(self, *keys: bytes) -> object:
        return [self.data.get(k) for k in keys]

    def getset(self, k: bytes, v: bytes) -> object:
        old = self.data.get(k)
        self.data[k] = v
        return old


def random_command(rng: random.Random) -> list[bytes]:
    key = b"k%d" % rng.randrange(8)
    name = rng.choice([b"SET", b"GET", b"SETNX", b"DELETE", b"EXISTS", b"INCRBY", b"APPEND",
                       b"STRLEN", b"MGET", b"GETSET"])  # fmt: skip
    if name in (b"SET", b"SETNX", b"GETSET"):
        return [name, key, b"%d" % rng.randrange(100)]
    if name == b"INCRBY":
        return [name, key, b"%d" % rng.randrange(-5, 6)]
    if name == b"APPEND":
        return [name, key, b"%d" % rng.randrange(10)]
    if name in (b"MGET", b"EXISTS", b"DELETE"):
        return [name, key, b"k%d" % rng.randrange(8)]
    return [name, key]


def test_commands_answer_as_redis_would_pipelined_and_not(gateways) -> None:
    g = gateways()
    r = g.client()
    model = Model()
    rng = random.Random(5)
    for _round in range(6):
        cmds = [random_command(rng) for _ in range(40)]
        # INCRBY and APPEND need integers where they go: keep values numeric.
        expected = [model.apply(c) for c in cmds]
        cmds = [[b"DEL" if c[0] == b"DELETE" else c[0], *c[1:]] for c in cmds]
        if _round % 2:
            pipe = r.pipeline(transaction=False)
            for c in cmds:
                pipe.execute_command(*c)
            got = pipe.execute(raise_on_error=False)
        else:
            got = [r.execute_command(*c) for c in cmds]
        assert [_norm(x) for x in got] == [_norm(x) for x in expected], cmds


def _norm(x: object) -> object:
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, list):
        return [_norm(i) for i in x]
    return x


def test_connection_commands_errors_and_scan(gateways) -> None:
    g = gateways()
    r = g.client()
    assert r.ping() is True
    assert r.echo(b"hi") == b"hi"
    assert r.client_setname("me") and r.client_getname() == "me"
    assert r.execute_command("SELECT", 0) is True
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        r.execute_command("SELECT", 1)
    with pytest.raises(redis.ResponseError, match="^unknown command 'NOPE', with args"):
        r.execute_command("NOPE", "a")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get'"):
        r.execute_command("GET")
    with pytest.raises(redis.ResponseError, match="do not expire"):
        r.set("t", "1", ex=5)
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.set("s", "abc")
        r.incr("s")
    with pytest.raises(redis.ResponseError, match="no transactions"):
        r.execute_command("MULTI")
    assert r.config_get("appendonly") == {}
    with pytest.raises(redis.ResponseError, match="no runtime configuration"):
        r.config_set("appendonly", "yes")
    r.set("n", (1 << 63) - 1)
    with pytest.raises(redis.ResponseError, match="overflow"):
        r.incr("n")
    assert r.set("x", "1", nx=True) and r.set("x", "2", nx=True) is None
    assert r.set("y", "1", xx=True) is None and r.get("y") is None
    assert r.set("x", "3", get=True) == b"1"
    keys = {b"scan-%03d" % i for i in range(57)}
    r.mset({k: b"v" for k in keys})
    assert set(r.scan_iter(match="scan-*", count=10)) == keys
    assert r.dbsize() == len(keys) + 3
    info = r.info()  # redis-py parses the sections
    assert info["redis_version"] and info["db0"]["keys"] == len(keys) + 3
    assert info["multiraft_regions"] == 1 and info["multiraft_stores"] == 3
    r3 = g.client(protocol=3)
    assert r3.get("x") == b"3" and r3.get("absent") is None


def test_auth_with_requirepass(gateways) -> None:
    g = gateways("s3cret")
    with pytest.raises(redis.AuthenticationError):
        g.client(password=None).get("a")
    with pytest.raises(redis.AuthenticationError):
        g.client(password="wrong").get("a")
    assert g.client(password="s3cret").set("a", "1")


def test_concurrent_incr_through_two_gateways_loses_nothing(gateways) -> None:
    a, b = gateways(), gateways()
    errors: list[BaseException] = []

    def worker(g: GatewayProcess) -> None:
        try:
            r = g.client()
            for _ in range(25):
                r.incr("counter")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(g,)) for g in (a, b) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert int(a.client().get("counter")) == 8 * 25


def test_bad_input_gets_an_error_or_a_closed_connection_and_others_are_served(gateways) -> None:
    g = gateways()
    r = g.client()
    r.set("big", b"x" * 1_000_000)

    def raw(data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", g.port), timeout=10) as s:
            s.sendall(data)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out

    assert raw(b"PING\r\n").startswith(b"-ERR Protocol error")
    assert raw(b"*2\r\n$3\r\nGET\r\n:5\r\n").startswith(b"-ERR Protocol error")
    huge = b"*2\r\n$3\r\nSET\r\n$999999999\r\n" + b"x" * (9 * 1024 * 1024)
    assert raw(huge).startswith(b"-ERR Protocol error: request too large")
    # A client that sends many big GETs and never reads its replies.
    lazy = socket.create_connection(("127.0.0.1", g.port), timeout=10)
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy.setblocking(False)
    sent = 0
    request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n"
    try:
        for _ in range(5000):
            try:
                sent += lazy.send(request)
            except BlockingIOError:
                break
        assert r.ping() and r.get("big") == b"x" * 1_000_000  # others are served
        rss = _rss_kb(g.proc.pid)
        assert rss < 400_000, f"gateway RSS {rss} KiB with a client that never reads"
    finally:
        lazy.close()
    assert r.ping()


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(
    shutil.which("redis-cli") is None, reason="redis-cli (redis-tools) not installed"
)
def test_redis_cli_works_against_the_gateway(gateways) -> None:
    g = gateways()
    cli = ["redis-cli", "-p", str(g.port)]
    assert subprocess.run([*cli, "SET", "c", "7"], capture_output=True, text=True).stdout == "OK\n"
    assert subprocess.run([*cli, "INCR", "c"], capture_output=True, text=True).stdout == "8\n"


def test_users_act_with_their_own_keys_roles_and_the_gateway_has_metrics(tmp_path: Path) -> None:
    """On a secure cluster: AUTH as a readonly user reads and gets NOPERM on
    writes (the stores refuse its key); /metrics counts the commands."""
    from prometheus_client.parser import text_string_to_metric_families

    cluster = LocalCluster(tmp_path / "cluster", 3, secure=True)
    cluster.root.mkdir()
    gateway = None
    try:
        reader = cluster.make_key("reader", "readonly")
        cluster.start_all()
        assert cluster.keys_dir is not None
        admin = cluster.keys_dir / "admin.key_secret"
        metrics_port = free_ports(1)[0]
        gateway = GatewayProcess(
            cluster,
            tmp_path,
            "pw",
            "--key", str(admin), "--cluster-keys", str(cluster.keys_dir),
            "--user", f"reader:rpw:{reader}",
            "--metrics-addr", f"127.0.0.1:{metrics_port}",
        )  # fmt: skip
        r = gateway.client()
        assert r.set("k", "v")
        ro = gateway.client(username="reader", password="rpw")
        assert ro.get("k") == b"v"
        with pytest.raises(redis.exceptions.NoPermissionError, match="role readonly may not put"):
            ro.set("k", "w")
        with pytest.raises(redis.AuthenticationError):
            gateway.client(username="reader", password="wrong").get("k")
        assert r.get("k") == b"v"
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as m:
            text = m.read().decode()
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
        }
        assert (
            samples[("multiraft_gateway_commands_total", (("command", "set"), ("result", "ok")))]
            >= 1
        )
        assert (
            samples[
                ("multiraft_gateway_commands_total", (("command", "set"), ("result", "NOPERM")))
            ]
            == 1
        )
        assert samples[("multiraft_gateway_connections", ())] >= 1
    finally:
        if gateway is not None:
            gateway.stop()
        cluster.stop_all()


def gateway_worker(g: GatewayProcess, seed: int, stop: threading.Event, out: list) -> None:
    """SET, GET and INCR through the gateway. An error reply to a write
    leaves its outcome unknown (the gateway turns a cluster timeout into
    one); a failed GET changed nothing and is left out. Each worker INCRs
    its own counter, so an INCR that answered n was a CAS from n - 1 to n,
    and one left unknown was a CAS from the last answer (the checker's
    terms); after an unknown one the worker stops counting."""
    rng = random.Random(seed)
    r = g.client(socket_timeout=30)
    counter, count, counting = b"counter-%d" % seed, 0, True
    keys = [b"a", b"b", b"c", counter, b"counter-%d" % ((seed + 1) % 4)]
    n = 0
    while not stop.is_set():
        key = rng.choice(keys)
        name = key.decode()
        n += 1
        start = time.monotonic()
        roll = rng.random()
        if key == counter and counting and roll < 0.6:
            expected = None if count == 0 else b"%d" % count
            try:
                count = r.incr(counter)
                swap = (expected, b"%d" % count)
                out.append(Op(seed, name, "cas", swap, "ok", True, start, time.monotonic()))
            except redis.RedisError:
                swap = (expected, b"%d" % (count + 1))
                out.append(Op(seed, name, "cas", swap, "info", None, start, time.monotonic()))
                counting = False
        elif roll < 0.4 and not key.startswith(b"counter"):
            value = b"%d-%d" % (seed, n)
            try:
                r.set(key, value)
                outcome = "ok"
            except redis.RedisError:
                outcome = "info"
            out.append(Op(seed, name, "put", value, outcome, None, start, time.monotonic()))
        else:
            try:
                got = r.get(key)
            except redis.RedisError:
                continue
            out.append(Op(seed, name, "get", None, "ok", got, start, time.monotonic()))


@pytest.mark.slow
def test_set_get_incr_behind_the_gateway_are_linearizable_under_kills_and_pauses(
    tmp_path: Path,
) -> None:
    from tests.cluster.test_linearizable_under_faults import nemesis

    cluster = LocalCluster(tmp_path / "cluster", 3)
    cluster.root.mkdir()
    gws: list[GatewayProcess] = []
    stop = threading.Event()
    histories: list[list] = [[] for _ in range(4)]
    workers: list[threading.Thread] = []
    chaos = threading.Thread(target=nemesis, args=(cluster, 7, stop))
    try:
        cluster.start_all()
        gws = [GatewayProcess(cluster, tmp_path), GatewayProcess(cluster, tmp_path)]
        workers = [
            threading.Thread(target=gateway_worker, args=(gws[i % 2], i, stop, histories[i]))
            for i in range(4)
        ]
        for t in [*workers, chaos]:
            t.start()
        time.sleep(15)
    finally:
        stop.set()
        for t in [*workers, chaos]:
            if t.is_alive():
                t.join(timeout=90)
        for i in cluster.ids:
            cluster.procs[i].send_signal(signal.SIGCONT)
        for g in gws:
            g.stop()
        cluster.stop_all()
    ops = [op for h in histories for op in h]
    assert len(ops) > 200, f"too little progress: {len(ops)} ops"
    assert_linearizable(ops)


def test_key_order_keeps_each_keys_commands_in_order_in_a_pipeline(gateways) -> None:
    """--pipeline-order key: commands on different keys overlap, yet every
    reply comes back in request order and equals what the model says
    (commands on one key, and keyless ones, keep their order)."""
    g = gateways(None, "--pipeline-order", "key")
    r = g.client()
    model = Model()
    rng = random.Random(11)
    for _round in range(4):
        cmds = [random_command(rng) for _ in range(120)]
        cmds[60] = [b"DBSIZE"]  # a keyless command: a barrier in the pipeline
        expected = []
        for c in cmds:
            expected.append(len(model.data) if c[0] == b"DBSIZE" else model.apply(c))
        cmds = [[b"DEL" if c[0] == b"DELETE" else c[0], *c[1:]] for c in cmds]
        pipe = r.pipeline(transaction=False)
        for c in cmds:
            pipe.execute_command(*c)
        got = pipe.execute(raise_on_error=False)
        assert [_norm(x) for x in got] == [_norm(x) for x in expected], cmds
    assert r.execute_command("QUIT")


def test_workers_share_the_port_and_their_metrics_add_up(gateways) -> None:
    """`--workers 2`: two processes serve one port; the supervisor's
    /metrics counts every command, whichever worker ran it; SIGTERM to the
    supervisor stops both workers."""
    from prometheus_client.parser import text_string_to_metric_families

    metrics_port = free_ports(1)[0]
    g = gateways(None, "--workers", "2", "--metrics-addr", f"127.0.0.1:{metrics_port}")
    clients = [g.client() for _ in range(16)]
    for i, r in enumerate(clients):
        assert r.set(b"w%d" % i, b"%d" % i)
    for i, r in enumerate(clients):
        assert r.get(b"w%d" % (15 - i)) == b"%d" % (15 - i)
    workers = _children(g.proc.pid)
    assert len(workers) == 2
    # The kernel spread the 16 connections over both (all on one: 2 ** -15).
    held = [_connections_on(g.port, pid) for pid in workers]
    assert sum(held) == 16 and all(held), held

    def sets_counted() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as m:
            text = m.read().decode()
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "multiraft_gateway_commands_total" and s.labels["command"] == "set"
        )

    assert sets_counted() == 16
    for r in clients:
        r.close()
    g.stop()
    for pid in workers:
        wait_for(f"worker {pid} to exit", lambda pid=pid: not Path(f"/proc/{pid}").exists(), 15)


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _connections_on(port: int, pid: int) -> int:
    """Established TCP connections to local `port` that process `pid` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01" and fields[9] in inodes:
            count += 1
    return count
