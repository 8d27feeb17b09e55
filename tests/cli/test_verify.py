"""`multiraft verify` end to end, in this process (so every store it starts
is stopped by its own `with` blocks, also when a test fails): thirty
seconds of every nemesis that can run here pass; a deliberately broken
build is caught and its key named; `verify --against` checks a running
secure cluster; `verify check` checks a history file again; a nemesis that
cannot run here is refused with the reason."""

from __future__ import annotations

import importlib.util
import os
import random
import re
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from multiraft.bench.cluster import LocalCluster
from multiraft.cli.main import main
from multiraft.client.async_client import AsyncClient
from multiraft.security.keys import generate
from multiraft.verify import netns
from multiraft.verify.checker import check
from multiraft.verify.history import Op, dump, load, load_faults

KEY = re.compile(r"verify-[0-9a-f]{6}/r\d+")
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

STALE_FOLLOWER_READS = '''
"""On PYTHONPATH of the stores of test_a_broken_build_is_caught: a get that
reaches a follower is answered at once from what it has applied, with no
ReadIndex and no lease (a follower lags its leader, so reads go stale)."""

import multiraft.store.operation.read as read

_accept = read.accept


def accept(ctx, op, args, handle):
    peer = ctx.peers.get(args.get("region")) if op == "get" else None
    if peer is not None and not peer.is_leader() and peer.region.contains(args["key"]):
        ctx.outbox.reply(handle, ctx.applied.get(peer.region.id, args["key"]))
        return
    _accept(ctx, op, args, handle)


read.accept = accept
'''


def _verify(*args: str) -> Result:
    return CliRunner().invoke(main, ["verify", *args], catch_exceptions=False)


_TARGET = AsyncClient._target


def _any_replica(self: AsyncClient, region: Any, op: Any) -> str:
    """AsyncClient._target, broken: a get goes to any replica of its region."""
    if op.name == "get":
        stores = self.routes.stores
        replicas = [stores[p.store_id] for p in region.peers if p.store_id in stores]
        if replicas:
            return random.choice(replicas)
    return _TARGET(self, region, op)


@pytest.mark.slow
def test_thirty_seconds_of_every_nemesis_on_three_stores_pass(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _verify("--duration", "30", "--out", str(out), "--seed", "17")
    print(result.output)
    assert result.exit_code == 0, result.output[-5000:]
    reason = netns.available()
    if reason is not None:
        assert f"skipped partition: {reason}" in result.output
        warnings.warn(f"verify ran without partitions here: {reason}", stacklevel=1)
    assert "skipped move: no store without a replica" in result.output
    faults = load_faults(out / "faults.jsonl")
    ran = {f.name for f in faults}
    assert len(ran) >= 3 and ran <= {"kill", "pause", "partition", "split", "transfer"}
    assert len(load(out / "history.jsonl")) > 1000
    assert "no final read succeeded" not in result.output
    assert sorted(p.name for p in (out / "logs").iterdir()) == [f"store-{i}.log" for i in (1, 2, 3)]
    assert (out / "latency.png").exists() == HAS_MATPLOTLIB


def test_a_broken_build_is_caught_and_its_key_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "broken"
    site.mkdir()
    (site / "sitecustomize.py").write_text(STALE_FOLLOWER_READS)
    path = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    monkeypatch.setattr(AsyncClient, "_target", _any_replica)
    out = tmp_path / "out"
    result = _verify("--duration", "8", "--nemesis", "none", "--out", str(out), "--seed", "3")
    print(result.output)
    assert result.exit_code == 1, result.output[-5000:]
    failing = [v.key for v in check(load(out / "history.jsonl")) if v.status == "fail"]
    assert failing and all(KEY.fullmatch(k) for k in failing)
    assert set(failing) <= set(KEY.findall(result.output))


def test_against_a_running_secure_cluster_with_admin_faults_only(tmp_path: Path) -> None:
    cluster = LocalCluster(secure=True)
    assert cluster.keys_dir is not None
    writer = generate("writer", cluster.keys_dir, "readwrite")[1]
    with cluster:
        keys = cluster.client_keys
        refused = _verify(
            "--against", ",".join(cluster.endpoints), "--key", str(writer),
            "--cluster-keys", keys["cluster_keys"], "--nemesis", "transfer",
            "--out", str(tmp_path / "refused"),
        )  # fmt: skip
        result = _verify(
            "--against", ",".join(cluster.endpoints), "--key", keys["key"],
            "--cluster-keys", keys["cluster_keys"], "--duration", "5", "--workers", "4",
            "--out", str(tmp_path / "out"), "--seed", "5",
        )  # fmt: skip
    assert refused.exit_code == 2
    assert "nemesis transfer cannot run here: needs an admin key" in refused.output
    print(result.output)
    assert result.exit_code == 0, result.output[-5000:]
    assert "nemeses: split, transfer" in result.output
    assert "skipped kill: not with --against" in result.output
    assert load(tmp_path / "out" / "history.jsonl")


def test_check_rechecks_a_history_file(tmp_path: Path) -> None:
    good = [
        Op(0, "reg-1", "put", "1", "ok", None, 0.0, 1.0),
        Op(1, "reg-1", "get", None, "ok", "1", 1.5, 2.0),
        Op(0, "set-1", "add", 5, "ok", None, 0.0, 0.5),
        Op(1, "set-1", "read", None, "ok", [5], 1.0, 1.2),
    ]
    dump(good, tmp_path / "good.jsonl")
    result = _verify("check", str(tmp_path / "good.jsonl"), "--plot", str(tmp_path / "g.png"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.png").exists() == HAS_MATPLOTLIB

    stale = [*good, Op(2, "reg-1", "get", None, "ok", None, 2.5, 3.0)]
    dump(stale, tmp_path / "stale.jsonl")
    result = _verify("check", str(tmp_path / "stale.jsonl"))
    assert result.exit_code != 0 and "reg-1" in result.output

    (tmp_path / "bad.jsonl").write_text('{"process": 0}\n')
    result = _verify("check", str(tmp_path / "bad.jsonl"))
    assert result.exit_code == 2 and "bad.jsonl:1" in result.output


def test_a_nemesis_that_cannot_run_here_is_refused_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(netns, "available", lambda: "needs root (network namespaces)")
    result = _verify("--nemesis", "kill,partition", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "nemesis partition cannot run here: needs root (network namespaces)" in result.output
    result = _verify("--stores", "3", "--nemesis", "move", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "use --stores 5" in result.output
    result = _verify("--nemesis", "fire")
    assert result.exit_code == 2 and "choose from kill, pause, partition" in result.output


@pytest.mark.slow
def test_an_interrupted_run_leaves_a_checkable_history_and_no_stores(tmp_path: Path) -> None:
    """SIGTERM mid-run: what was recorded is written (the operations then
    in flight as unknown), it checks out, and every store is gone."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "multiraft.cli.main", "verify", "--duration", "60"]
    cmd += ["--nemesis", "none", "--out", str(out), "--seed", "5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = iter(proc.stdout.readline, "") if proc.stdout else iter(())
        assert any(" ops (ok " in line for line in lines)  # its first progress line, at 10 s
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        stores = [int(c) for c in children if "store start" in _cmdline(int(c))]
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    assert "interrupted: " in rest
    ops = load(out / "history.jsonl")
    assert len(ops) > 100
    assert [v.status for v in check(ops)] == ["ok"] * 18
    assert stores and not any(Path(f"/proc/{pid}").exists() for pid in stores)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
