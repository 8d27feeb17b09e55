"""`multiraft region ...` and `multiraft status`: look at and steer the
cluster's regions."""

from __future__ import annotations

import time
from collections.abc import Callable

import click

from multiraft import Client
from multiraft.protocol.region import Region

from .common import (
    CommandFailed,
    client_options,
    client_options_waiting,
    connect,
    echo_json,
    echo_table,
    hex_option,
    region_rows,
    to_bytes,
)
from .watch import live_status

WAIT_POLL = 0.1
"""Seconds between looks while waiting for a leader transfer to show."""


@click.group()
def region() -> None:
    """List, split and move the leaders of regions."""


@region.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of region objects.")
@client_options
@hex_option
def list_(as_json: bool, cluster: str | None, timeout: float, hex_: bool) -> None:
    """Print every region: id, start, end, epoch, peers, leader."""
    with connect(cluster, timeout) as c:
        entries = c.regions()
    entries.sort(key=lambda e: e[0].start)
    if as_json:
        echo_json([r.to_json(leader, hex_keys=hex_) for r, leader in entries])
    else:
        echo_table(region_rows(entries, hex_))


@region.command()
@click.argument("keys", nargs=-1, required=True)
@client_options
@hex_option
def split(keys: tuple[str, ...], cluster: str | None, timeout: float, hex_: bool) -> None:
    """Split the region holding KEY at KEY (KEY starts the right half); with
    several keys, every region at all the keys it holds, many at once."""
    ks = [to_bytes(k, hex_, "KEY") for k in keys]
    with connect(cluster, timeout) as c:
        if len(ks) == 1:
            left, right = c.split(ks[0])
            echo_table(region_rows([(left, None), (right, None)], hex_))
            return
        made = c.split_many(ks)
    click.echo(f"{len(made)} regions start at the {len(set(ks))} keys")


@region.command("transfer-leader")
@click.argument("region_id", type=click.IntRange(min=1))
@click.argument("store_id", type=click.IntRange(min=1))
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait (up to --timeout) until the cluster reports the new leader.",
)
@client_options
def transfer_leader(
    region_id: int, store_id: int, wait: bool, cluster: str | None, timeout: float
) -> None:
    """Move the leadership of REGION_ID to its replica on STORE_ID."""
    deadline = time.monotonic() + timeout
    with connect(cluster, timeout) as c:
        c.transfer_leader(region_id, store_id)
        while wait:
            leaders = {r.id: leader for r, leader in c.regions()}
            if leaders.get(region_id) == store_id:
                break
            if time.monotonic() >= deadline:
                raise CommandFailed(
                    f"Timeout: region {region_id} was not led by store {store_id} in time"
                )
            time.sleep(WAIT_POLL)
    click.echo("OK")


MEMBERSHIP_TIMEOUT = 60.0
"""Default bound of a replica change: a new replica may need a big snapshot."""

membership_options = client_options_waiting(MEMBERSHIP_TIMEOUT)


def _change_replicas(
    cluster: str | None, timeout: float, change: Callable[[Client], Region]
) -> None:
    """Run one replica change through a client and print the new descriptor."""
    with connect(cluster, timeout) as c:
        region = change(c)
    echo_table(region_rows([(region, None)], False))


@region.command("add-peer")
@click.argument("region_id", type=click.IntRange(min=1))
@click.argument("store_id", type=click.IntRange(min=1))
@membership_options
def add_peer(region_id: int, store_id: int, cluster: str | None, timeout: float) -> None:
    """Give REGION_ID a voting replica on STORE_ID (learner, catch-up, promotion)."""
    _change_replicas(cluster, timeout, lambda c: c.add_peer(region_id, store_id, timeout))


@region.command("remove-peer")
@click.argument("region_id", type=click.IntRange(min=1))
@click.argument("store_id", type=click.IntRange(min=1))
@membership_options
def remove_peer(region_id: int, store_id: int, cluster: str | None, timeout: float) -> None:
    """Remove REGION_ID's replica on STORE_ID."""
    _change_replicas(cluster, timeout, lambda c: c.remove_peer(region_id, store_id, timeout))


@region.command("move")
@click.argument("region_id", type=click.IntRange(min=1))
@click.argument("from_store", type=click.IntRange(min=1))
@click.argument("to_store", type=click.IntRange(min=1))
@membership_options
def move(
    region_id: int, from_store: int, to_store: int, cluster: str | None, timeout: float
) -> None:
    """Move REGION_ID's replica from FROM_STORE to TO_STORE (add, then remove)."""
    _change_replicas(
        cluster, timeout, lambda c: c.move_peer(region_id, from_store, to_store, timeout)
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help='Print {"stores": [...], "regions": [...]}.')
@click.option("--watch", is_flag=True, help="Refresh a live view every second (Ctrl-C ends).")
@click.option("--count", type=click.IntRange(min=1), default=None, help="With --watch: N views.")
@client_options
@hex_option
def status(
    as_json: bool, watch: bool, count: int | None, cluster: str | None, timeout: float, hex_: bool
) -> None:
    """Print the stores (address, up, regions, leaders) and the regions."""
    with connect(cluster, timeout) as c:
        if watch:
            live_status(c, count)
            return
        st = c.status()
    print_status(st, as_json, hex_)


def print_status(st: dict, as_json: bool = False, hex_: bool = False) -> None:
    """Print what `Client.status()` returned, as tables or JSON."""
    entries = sorted(st["regions"], key=lambda e: e[0].start)
    if as_json:
        regions = [r.to_json(leader, hex_keys=hex_) for r, leader in entries]
        echo_json({"stores": st["stores"], "regions": regions})
        return
    click.echo(f"answered by store {st.get('store_id')} at {st.get('addr')}")
    rows = [["STORE", "ADDR", "STATE", "REGIONS", "LEADERS", "QUIET", "CAPACITY", "AVAILABLE"]]
    for s in sorted(st["stores"], key=lambda s: s.get("id", 0)):
        state = s.get("state") or ("up" if s.get("up") else "down")
        rows.append(
            [
                str(s.get("id")),
                str(s.get("addr")),
                state,
                str(s.get("regions")),
                str(s.get("leaders")),
                str(s.get("quiet", "?")),
                _size(s.get("capacity")),
                _size(s.get("available")),
            ]
        )
    echo_table(rows)
    click.echo()
    echo_table(region_rows(entries, hex_))


def _size(n: object) -> str:
    """Bytes as a short human figure ("?" when the store has not said)."""
    if not isinstance(n, int):
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
