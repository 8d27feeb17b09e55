"""`multiraft keys ...` and `multiraft trust ...`: make CurveZMQ keys, and
change which keys a running secure cluster trusts (through an admin key)."""

from __future__ import annotations

import click

from multiraft.security.keys import ROLES, CertificateError, generate, load_public

from .common import BadInput, client_options, connect, echo_json, echo_table


@click.group()
def keys() -> None:
    """Make CurveZMQ key pairs (pyzmq's certificate format)."""


@keys.command("generate")
@click.argument("name")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--role", type=click.Choice(ROLES), default="readwrite", show_default=True)
@click.option("--store-id", type=click.IntRange(min=1), default=None, help="A store key's store.")
@click.option("--addr", default=None, help="A store key's HOST:PORT (clients find its key by it).")
def generate_(name: str, out_dir: str, role: str, store_id: int | None, addr: str | None) -> None:
    """Write OUT/NAME.key (public, to share) and OUT/NAME.key_secret (private)."""
    try:
        public, secret = generate(name, out_dir, role, store_id, addr)
    except (ValueError, FileExistsError) as e:
        raise click.UsageError(str(e)) from None
    click.echo(f"public key: {public}")
    click.echo(f"secret key: {secret}")


@click.group()
def trust() -> None:
    """Change the keys a secure cluster trusts (needs an admin key)."""


@trust.command("add")
@click.argument("cert", type=click.Path(dir_okay=False, exists=True))
@click.option("--role", type=click.Choice(ROLES), default=None, help="[default: the cert's]")
@click.option("--store-id", type=click.IntRange(min=1), default=None, help="[default: the cert's]")
@client_options
def add(
    cert: str, role: str | None, store_id: int | None, cluster: str | None, timeout: float
) -> None:
    """Trust the public key in CERT on every store, with its role."""
    try:
        c = load_public(cert)
    except CertificateError as e:
        raise BadInput(str(e)) from None
    role = role or c.role
    store_id = store_id if store_id is not None else c.store_id
    with connect(cluster, timeout) as client:
        client.trust_add(c.public, role, c.name, store_id if role == "store" else None)
    click.echo(f"trusted {c.name} ({role})")


@trust.command("remove")
@click.argument("cert", type=click.Path(dir_okay=False, exists=True))
@client_options
def remove(cert: str, cluster: str | None, timeout: float) -> None:
    """Stop trusting the public key in CERT, on every store."""
    try:
        c = load_public(cert)
    except CertificateError as e:
        raise BadInput(str(e)) from None
    with connect(cluster, timeout) as client:
        removed = client.trust_remove(c.public)
    click.echo(f"removed {c.name}" if removed else f"{c.name} was not trusted")


@trust.command("list")
@click.option("--json", "as_json", is_flag=True)
@client_options
def list_(as_json: bool, cluster: str | None, timeout: float) -> None:
    """Every key the answering store trusts (and removed ones)."""
    with connect(cluster, timeout) as client:
        rows = client.trust_list()
    if as_json:
        echo_json(rows)
        return
    table = [["NAME", "ROLE", "STORE", "KEY", "STATE"]]
    for r in rows:
        sid = "-" if r["store_id"] is None else str(r["store_id"])
        state = "removed" if r["removed"] else "trusted"
        table.append([r["name"], r["role"], sid, r["key"], state])
    echo_table(table)
