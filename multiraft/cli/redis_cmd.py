"""`multiraft redis`: a Redis-protocol gateway in front of the cluster."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click
import uvloop

from multiraft.client import AsyncClient
from multiraft.gateway.commands import Gateway
from multiraft.gateway.server import GatewayServer

from .common import CLUSTER_ENV, CLUSTER_KEYS_ENV, KEY_ENV


@click.command("redis")
@click.option("--listen", default="127.0.0.1:6379", show_default=True, help="HOST:PORT to serve.")
@click.option(
    "--cluster",
    envvar=CLUSTER_ENV,
    required=True,
    metavar="HOST:PORT[,...]",
    help=f"Stores to contact; default: ${CLUSTER_ENV}.",
)
@click.option(
    "--key",
    "key_file",
    envvar=KEY_ENV,
    default=None,
    metavar="FILE",
    help=f"The gateway's client key on a secure cluster; default: ${KEY_ENV}.",
)
@click.option(
    "--cluster-keys",
    envvar=CLUSTER_KEYS_ENV,
    default=None,
    metavar="PATH",
    help=f"The stores' public certificates; default: ${CLUSTER_KEYS_ENV}.",
)
@click.option("--requirepass", default=None, help="Clients must AUTH with this password.")
@click.option(
    "--timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds per cluster operation, retries included.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def redis(
    listen: str, cluster: str, key_file: str | None, cluster_keys: str | None,
    requirepass: str | None, timeout: float, log_level: str,
) -> None:  # fmt: skip
    """Serve RESP2/RESP3 on LISTEN, mapping commands onto the cluster."""
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s redis-gateway %(levelname)s %(name)s: %(message)s",
    )
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, not {listen!r}", param_hint="'--listen'")
    password = requirepass.encode() if requirepass is not None else None
    uvloop.run(_serve(host, int(port), cluster, key_file, cluster_keys, password, timeout))


async def _serve(
    host: str,
    port: int,
    cluster: str,
    key_file: str | None,
    cluster_keys: str | None,
    password: bytes | None,
    timeout: float,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncClient(cluster, timeout, key=key_file, cluster_keys=cluster_keys) as client:
        server = await GatewayServer(Gateway(client, password)).serve(host, port)
        logging.getLogger("multiraft").info("redis gateway on %s:%d", host, port)
        async with server:
            await stop.wait()
