"""`multiraft kv ...`: read and write keys from the command line."""

from __future__ import annotations

import click

from .common import Negative, client_options, connect, echo_json, hex_option, raw, show, to_bytes


@click.group()
def kv() -> None:
    """Read and write keys (UTF-8 text, or hex with --hex)."""


@kv.command()
@click.argument("key")
@click.argument("value")
@client_options
@hex_option
def put(key: str, value: str, cluster: str | None, timeout: float, hex_: bool) -> None:
    """Set KEY to VALUE."""
    k, v = to_bytes(key, hex_, "KEY"), to_bytes(value, hex_, "VALUE")
    with connect(cluster, timeout) as c:
        c.put(k, v)
    click.echo("OK")


@kv.command()
@click.argument("key")
@client_options
@hex_option
def get(key: str, cluster: str | None, timeout: float, hex_: bool) -> None:
    """Print the value of KEY; exit 1 if it is absent."""
    k = to_bytes(key, hex_, "KEY")
    with connect(cluster, timeout) as c:
        value = c.get(k)
    if value is None:
        raise Negative(f"key not found: {show(k, hex_)}")
    click.echo(raw(value, hex_))


@kv.command()
@click.argument("key")
@client_options
@hex_option
def delete(key: str, cluster: str | None, timeout: float, hex_: bool) -> None:
    """Remove KEY (no error if it is absent)."""
    k = to_bytes(key, hex_, "KEY")
    with connect(cluster, timeout) as c:
        c.delete(k)
    click.echo("OK")


@kv.command()
@click.argument("start", required=False, default="")
@click.argument("end", required=False, default="")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="At most N pairs.")
@click.option("--json", "as_json", is_flag=True, help='Print [{"key": k, "value": v}, ...].')
@client_options
@hex_option
def scan(
    start: str,
    end: str,
    limit: int | None,
    as_json: bool,
    cluster: str | None,
    timeout: float,
    hex_: bool,
) -> None:
    """Print "KEY<TAB>VALUE" for every key in [START, END), in key order.

    END is exclusive; an empty or missing START / END means the start / end
    of the key space. The scan crosses regions."""
    s, e = to_bytes(start, hex_, "START"), to_bytes(end, hex_, "END")
    with connect(cluster, timeout) as c:
        rows = c.scan(s, e, limit=limit)
    if as_json:
        echo_json([{"key": show(k, hex_), "value": show(v, hex_)} for k, v in rows])
        return
    for k, v in rows:
        click.echo(raw(k, hex_) + b"\t" + raw(v, hex_))


@kv.command()
@click.argument("key")
@click.option("--expect", default=None, metavar="V", help="Swap only if the value is V.")
@click.option("--expect-absent", is_flag=True, help="Swap only if KEY is absent.")
@click.option("--new", default=None, metavar="V", help="Set the value to V.")
@click.option("--delete", "delete_", is_flag=True, help="Delete KEY.")
@client_options
@hex_option
def cas(
    key: str,
    expect: str | None,
    expect_absent: bool,
    new: str | None,
    delete_: bool,
    cluster: str | None,
    timeout: float,
    hex_: bool,
) -> None:
    """Compare-and-swap: atomically, if KEY's value is as expected, set it
    to --new (or --delete it). Prints OK if it swapped; exit 1 if not."""
    if (expect is not None) == expect_absent:
        raise click.UsageError("give exactly one of --expect V and --expect-absent")
    if (new is not None) == delete_:
        raise click.UsageError("give exactly one of --new V and --delete")
    k = to_bytes(key, hex_, "KEY")
    expected = None if expect is None else to_bytes(expect, hex_, "--expect")
    replacement = None if new is None else to_bytes(new, hex_, "--new")
    with connect(cluster, timeout) as c:
        swapped = c.cas(k, expected, replacement)
    if not swapped:
        raise Negative("not swapped: the current value is not the expected one")
    click.echo("OK")
