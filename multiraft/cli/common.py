"""What every client command shares: the --cluster/--timeout/--hex options,
the --key/--cluster-keys of a secure cluster, byte encoding of arguments and
output, and one-line errors with exit codes.

Exit codes: 0 success; 1 a negative answer (`kv get` of an absent key, a
`kv cas` that did not swap); 2 bad usage or input; 3 the operation failed
(timeout, cluster error).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

import click

from multiraft import Client, errors
from multiraft.client.keys import KeyArgs
from multiraft.protocol.region import Region
from multiraft.security.keys import CertificateError

from . import known_clusters

F = TypeVar("F", bound=Callable[..., Any])

EXIT_NEGATIVE = 1
EXIT_USAGE = 2
EXIT_FAILED = 3

CLUSTER_ENV = "MULTIRAFT_CLUSTER"
KEY_ENV = "MULTIRAFT_KEY"
CLUSTER_KEYS_ENV = "MULTIRAFT_CLUSTER_KEYS"


class CommandFailed(click.ClickException):
    """The cluster refused or did not answer: exit 3 with one line."""

    exit_code = EXIT_FAILED


class BadInput(click.ClickException):
    """The cluster refused the request as malformed: exit 2 with one line."""

    exit_code = EXIT_USAGE


class Negative(click.ClickException):
    """A well-formed negative answer (absent key, failed compare): exit 1."""

    exit_code = EXIT_NEGATIVE


class Duration(click.ParamType):
    """Seconds, as a number ("10", "0.5") or with a unit ("500ms", "10s",
    "30m", "1h")."""

    name = "duration"
    UNITS: ClassVar[dict[str, float]] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            seconds = float(value)
        else:
            text = str(value).strip().lower()
            unit = next((u for u in ("ms", "s", "m", "h") if text.endswith(u)), "")
            try:
                seconds = float(text[: len(text) - len(unit)]) * self.UNITS.get(unit, 1.0)
            except ValueError:
                self.fail(f"{value!r} is not a duration (e.g. 10, 10s, 30m, 1h)", param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} is not a positive duration", param, ctx)
        return seconds


def client_options(f: F) -> F:
    """--cluster and --timeout, accepted after the subcommand."""
    return client_options_waiting(5.0)(f)


def client_options_waiting(default_timeout: float) -> Callable[[F], F]:
    """client_options for commands that may take long (replica changes)."""

    def decorate(f: F) -> F:
        return _client_options(f, default_timeout)

    return decorate


def _remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Keep a key option in the context's meta, where `connect` finds it:
    every client command takes the keys without passing them along."""
    ctx.meta[f"multiraft.{param.name}"] = value


def key_options(whose: str, **kw: Any) -> Callable[[F], F]:
    """--key FILE (as `key_file`) and --cluster-keys PATH, from
    MULTIRAFT_KEY / MULTIRAFT_CLUSTER_KEYS; `whose`: whose key it is."""

    def decorate(f: F) -> F:
        f = click.option(
            "--cluster-keys",
            envvar=CLUSTER_KEYS_ENV,
            metavar="PATH",
            help=f"The stores' public certificates (a directory); default: ${CLUSTER_KEYS_ENV}.",
            **kw,
        )(f)
        return click.option(
            "--key",
            "key_file",
            envvar=KEY_ENV,
            metavar="FILE",
            help=f"{whose} key (.key_secret) on a secure cluster; default: ${KEY_ENV}.",
            **kw,
        )(f)

    return decorate


def _client_options(f: F, default_timeout: float) -> F:
    f = key_options("This client's", expose_value=False, callback=_remember)(f)
    f = click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=default_timeout,
        show_default=True,
        help="Seconds to wait for the cluster, retries included.",
    )(f)
    return click.option(
        "--cluster",
        envvar=CLUSTER_ENV,
        metavar="HOST:PORT[,...]",
        help=f"Stores to contact (any one works); default: ${CLUSTER_ENV}.",
    )(f)


log_level_option = click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log to stderr from this level up.",
)
"""For the long-running processes (a store, the Redis gateway)."""


def log_to_stderr(level: str, who: str) -> None:
    """One log line per record on stderr, naming the process."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s {who} %(levelname)s %(name)s: %(message)s",
    )


def hex_option(f: F) -> F:
    return click.option(
        "--hex", "hex_", is_flag=True, help="Keys and values are hex, in and out (raw bytes)."
    )(f)


@contextmanager
def connect(cluster: str | None, timeout: float) -> Iterator[Client]:
    """A Client for the command; turns its errors into one-line exits."""
    if not cluster or not cluster.strip():
        raise click.UsageError(f"no cluster given: pass --cluster HOST:PORT or set {CLUSTER_ENV}")
    meta = click.get_current_context().meta
    key, cluster_keys = meta.get("multiraft.key_file"), meta.get("multiraft.cluster_keys")
    if key is None and cluster_keys is None:
        key, cluster_keys = known_keys(cluster)
    try:
        client = Client(cluster, timeout=timeout, key=key, cluster_keys=cluster_keys)
    except CertificateError as e:
        raise click.BadParameter(str(e), param_hint="'--key' / '--cluster-keys'") from None
    except (ValueError, TypeError) as e:
        raise click.BadParameter(str(e), param_hint="'--cluster'") from None
    try:
        with client:
            yield client
    except errors.InvalidRequest as e:
        raise BadInput(f"InvalidRequest: {e}") from None
    except errors.MultiraftError as e:
        raise CommandFailed(f"{type(e).__name__}: {e}") from None


def to_bytes(text: str, hex_: bool, what: str) -> bytes:
    """A command-line argument as bytes: UTF-8 (undecodable argv bytes kept
    as they were), or hex with --hex."""
    if not hex_:
        return text.encode("utf-8", "surrogateescape")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise click.BadParameter(f"not hex: {text!r}", param_hint=what) from None


def show(data: bytes, hex_: bool) -> str:
    """Bytes for text output (JSON, tables)."""
    return data.hex() if hex_ else data.decode("utf-8", "backslashreplace")


def raw(data: bytes, hex_: bool) -> bytes:
    """Bytes for a plain output line: exactly the stored bytes, or hex."""
    return data.hex().encode() if hex_ else data


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


def region_rows(entries: list[tuple[Region, int | None]], hex_: bool) -> list[list[str]]:
    """Table rows of `region list` / `status`."""
    rows = [["ID", "START", "END", "EPOCH", "PEERS", "LEADER"]]
    for region, leader in sorted(entries, key=lambda e: e[0].start):
        peers = ",".join(
            str(p.store_id) + ("" if p.role == "voter" else f"({p.role})") for p in region.peers
        )
        rows.append(
            [
                str(region.id),
                show(region.start, hex_) if region.start else "(min)",
                show(region.end, hex_) if region.end else "(max)",
                f"v{region.epoch.version},c{region.epoch.conf_ver}",
                peers or "-",
                "-" if leader is None else str(leader),
            ]
        )
    return rows


def echo_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so that what a command started (stores,
    workers, namespaces) is stopped on the way out."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def known_keys(cluster: str) -> tuple[str | None, str | None]:
    """The keys `cluster up` recorded for one of these stores, else none."""
    addrs = [a.strip() for a in cluster.split(",")]
    return known_clusters.keys_for(addrs) or (None, None)


def client_keys(
    key_file: str | None, cluster_keys: str | None, cluster: str | None = None
) -> KeyArgs:
    """Client(..., **this) from --key and --cluster-keys: both or neither;
    neither: those `cluster up` recorded for `cluster`, if any."""
    if key_file is None and cluster_keys is None and cluster:
        key_file, cluster_keys = known_keys(cluster)
    if key_file is None and cluster_keys is None:
        return {}
    if key_file is None or cluster_keys is None:
        raise click.UsageError("give both --key and --cluster-keys, or neither")
    return {"key": key_file, "cluster_keys": cluster_keys}
