"""`multiraft store start` and `multiraft cluster up`: run store processes."""

from __future__ import annotations

import logging
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from multiraft import Client
from multiraft.cli import known_clusters
from multiraft.cli.common import (
    CLUSTER_KEYS_ENV,
    KEY_ENV,
    Duration,
    log_level_option,
    log_to_stderr,
)
from multiraft.cli.region import print_status
from multiraft.errors import MultiraftError
from multiraft.protocol.limits import check_store_addr
from multiraft.security.keys import (
    CertificateError,
    load_key_pair,
    load_publics,
    make_cluster_keys,
)
from multiraft.storage.errors import StorageError
from multiraft.store.config import SecurityConfig, StoreConfig
from multiraft.store.meta import StartupError
from multiraft.store.shell import StoreServer
from multiraft.store.snapshot_transfer import TransferConfig
from multiraft.store.split_check import SplitPolicy


def parse_cluster(spec: str) -> dict[int, str]:
    """`1=127.0.0.1:20161,2=...` -> {1: "127.0.0.1:20161", ...}."""
    out: dict[int, str] = {}
    for part in spec.split(","):
        sid, sep, addr = part.strip().partition("=")
        if not sep or not sid.isdigit():
            raise click.BadParameter(f"expected ID=HOST:PORT, got {part!r}")
        out[int(sid)] = checked_addr(addr)
    return out


def store_addr(_ctx: object, _param: object, value: str | None) -> str | None:
    """A click callback: HOST:PORT, or a usage error."""
    return None if value is None else checked_addr(value)


def checked_addr(value: str) -> str:
    try:
        return check_store_addr(value)
    except (TypeError, ValueError) as e:
        raise click.BadParameter(str(e)) from None


@click.group()
def store() -> None:
    """Run a store process."""


@store.command("start")
@click.option("--store-id", type=click.IntRange(min=1), required=True, help="This store's id.")
@click.option(
    "--addr", required=True, callback=store_addr, help="HOST:PORT serving peers and clients."
)
@click.option("--data-dir", type=click.Path(file_okay=False), required=True)
@click.option("--initial-cluster", default=None, help="ID=HOST:PORT,... of a new cluster.")
@click.option(
    "--join", default=None, callback=store_addr, help="HOST:PORT of a member of a running cluster."
)
@click.option("--replicas", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--tick-interval", type=float, default=0.1, show_default=True, help="Seconds per Raft tick."
)
@click.option(
    "--raft-log-gc-threshold",
    type=click.IntRange(min=2),
    default=4096,
    show_default=True,
    help="Compact a region's log past this many applied entries.",
)
@click.option(
    "--region-split-size",
    type=click.IntRange(min=1),
    default=96 << 20,
    show_default=True,
    help="Split a region holding more bytes than this.",
)
@click.option(
    "--region-split-keys",
    type=click.IntRange(min=2),
    default=1_000_000,
    show_default=True,
    help="Split a region holding more keys than this.",
)
@click.option(
    "--max-store-down-time",
    type=Duration(),
    default="30m",
    show_default=True,
    help="How long a store may be silent before its replicas are rebuilt elsewhere "
    "(seconds, or 500ms / 10s / 30m / 1h).",
)
@click.option(
    "--snap-chunk-size",
    type=click.IntRange(min=1, max=32 << 20),
    default=1 << 20,
    show_default=True,
    help="Bytes of keys and values per chunk of a streamed snapshot.",
)
@click.option(
    "--hibernate-regions/--no-hibernate-regions",
    default=True,
    show_default=True,
    help="Let idle regions go quiet: no ticks, no heartbeats, until something wakes them.",
)
@click.option(
    "--read-mode",
    type=click.Choice(["lease", "read-index"]),
    default="lease",
    show_default=True,
    help="lease: a leader serves reads while a quorum's recent acknowledgement "
    "guarantees no other leader (assumes the stores' clocks advance at rates "
    "within 5% of each other); read-index: every read waits for a heartbeat "
    "round to a quorum.",
)
@click.option(
    "--metrics-addr",
    default=None,
    callback=store_addr,
    help="HOST:PORT serving Prometheus metrics at /metrics (default: none).",
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="This store's key (.key_secret); with --trusted every connection is CURVE.",
)
@click.option(
    "--trusted",
    type=click.Path(exists=True),
    default=None,
    help="Public certificates (a directory of *.key, or one file) trusted from the start.",
)
@log_level_option
def start(
    store_id: int,
    addr: str,
    data_dir: str,
    initial_cluster: str | None,
    join: str | None,
    replicas: int,
    tick_interval: float,
    raft_log_gc_threshold: int,
    region_split_size: int,
    region_split_keys: int,
    max_store_down_time: float,
    snap_chunk_size: int,
    hibernate_regions: bool,
    read_mode: str,
    metrics_addr: str | None,
    key_file: str | None,
    trusted: str | None,
    log_level: str,
) -> None:
    """Run one store in the foreground; SIGTERM or SIGINT stops it cleanly.

    Without --key/--trusted it runs in plain mode (no encryption, no
    authentication) and warns so."""
    log_to_stderr(log_level, f"store-{store_id}")
    if join is not None and initial_cluster is not None:
        raise click.UsageError("give --initial-cluster or --join, not both")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    cluster = parse_cluster(initial_cluster) if initial_cluster else None
    security = security_config(key_file, trusted)
    config = StoreConfig(
        store_id,
        addr,
        data_dir,
        cluster,
        replicas,
        tick_interval,
        log_gc_threshold=raft_log_gc_threshold,
        log_gc_keep=max(1, raft_log_gc_threshold // 4),
        split_policy=SplitPolicy(region_split_size, region_split_keys),
        join=join,
        max_store_down_time=max_store_down_time,
        snapshot=TransferConfig(chunk_bytes=snap_chunk_size),
        hibernate=hibernate_regions,
        lease_reads=read_mode == "lease",
        security=security,
        metrics_addr=metrics_addr,
    )
    raise_open_files_limit()
    try:
        s = StoreServer(config)
    except (StartupError, StorageError) as e:
        raise click.ClickException(str(e)) from None
    signal.signal(signal.SIGTERM, lambda *_: s.stop())
    signal.signal(signal.SIGINT, lambda *_: s.stop())
    logging.getLogger("multiraft").info("store %d serving on %s", store_id, addr)
    s.run()


def raise_open_files_limit() -> None:
    """Every client connection is a file descriptor: a store takes all the
    system lets it have, so thousands of connections do not starve its own
    files (LMDB, snapshot staging) of descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError) as e:
            logging.getLogger("multiraft").warning("open files limit stays %d: %s", soft, e)


def security_config(key_file: str | None, trusted: str | None) -> SecurityConfig | None:
    if (key_file is None) != (trusted is None):
        raise click.UsageError("give both --key and --trusted (secure mode), or neither (plain)")
    if key_file is None or trusted is None:
        return None
    try:
        return SecurityConfig(load_key_pair(key_file), load_publics(trusted))
    except CertificateError as e:
        raise click.BadParameter(str(e)) from None


def show_when_ready(endpoints: str, keys_dir: str | None, timeout: float = 30.0) -> None:
    """Print the stores' state once every region has a leader (bounded wait)."""
    deadline = time.monotonic() + timeout
    key = cluster_keys = None
    if keys_dir is not None:
        key, cluster_keys = os.path.join(keys_dir, "admin.key_secret"), keys_dir
    with Client(endpoints, timeout=2.0, key=key, cluster_keys=cluster_keys) as client:
        while time.monotonic() < deadline:
            try:
                st = client.status()
            except MultiraftError:
                time.sleep(0.2)
                continue
            if st["regions"] and all(leader for _, leader in st["regions"]):
                print_status(st)
                return
            time.sleep(0.2)
    click.echo(f"the cluster has no leader after {timeout:.0f} s; see the stores' logs", err=True)


@click.group()
def cluster() -> None:
    """Run a local cluster of store processes."""


@cluster.command("up")
@click.option("--stores", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--data-dir", type=click.Path(file_okay=False), default="./multiraft-data", show_default=True
)
@click.option("--base-port", type=click.IntRange(1, 65000), default=20160, show_default=True)
@click.option("--replicas", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--plain", is_flag=True, help="No keys: unencrypted, and anyone may connect (not for real use)."
)
def up(stores: int, data_dir: str, base_port: int, replicas: int, plain: bool) -> None:
    """Start N stores on 127.0.0.1 and wait; Ctrl-C stops them all.

    Secure by default: the stores' keys and an admin key are made in
    DATA_DIR/keys on the first run. A second run with the same data dir
    restarts the same cluster.
    """
    members = {i: f"127.0.0.1:{base_port + i}" for i in range(1, stores + 1)}
    spec = ",".join(f"{i}={a}" for i, a in members.items())
    keys_dir = (
        None
        if plain
        else str(make_cluster_keys(os.path.abspath(os.path.join(data_dir, "keys")), members))
    )
    procs = [
        start_store(sid, addr, spec, data_dir, replicas, keys_dir) for sid, addr in members.items()
    ]
    endpoints = ",".join(members.values())
    click.echo(f"MULTIRAFT_CLUSTER={endpoints}")
    known_clusters.remember(members.values(), keys_dir)
    if keys_dir is not None:
        click.echo(f"{KEY_ENV}={os.path.join(keys_dir, 'admin.key_secret')}")
        click.echo(f"{CLUSTER_KEYS_ENV}={keys_dir}")
    show_when_ready(endpoints, keys_dir)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        while not stop and all(p.poll() is None for p in procs):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    failed = [p.pid for p in procs if p.returncode not in (0, -signal.SIGTERM)]
    if failed and not stop:
        raise click.ClickException(f"stores exited unexpectedly: {failed}")


def start_store(
    sid: int, addr: str, spec: str, data_dir: str, replicas: int, keys_dir: str | None
) -> subprocess.Popen[bytes]:
    """One store of `cluster up`, as a child process."""
    cmd = [
        sys.executable,
        "-m",
        "multiraft.cli.main",
        "store",
        "start",
        "--store-id",
        str(sid),
        "--addr",
        addr,
        "--data-dir",
        os.path.join(data_dir, f"store-{sid}"),
        "--initial-cluster",
        spec,
        "--replicas",
        str(replicas),
    ]
    if keys_dir is not None:
        secret = os.path.join(keys_dir, f"store-{sid}.key_secret")
        cmd += ["--key", secret, "--trusted", keys_dir]
    proc = subprocess.Popen(cmd)
    click.echo(f"store {sid}: {addr} (pid {proc.pid})")
    return proc
