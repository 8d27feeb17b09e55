"""`multiraft redis`: a Redis-protocol gateway in front of the cluster."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

import click
import uvloop
from prometheus_client import CollectorRegistry, start_http_server

from multiraft.client import AsyncClient
from multiraft.gateway.commands import Gateway, User
from multiraft.gateway.server import GatewayServer

from .common import CLUSTER_ENV, key_options, known_keys, log_level_option, log_to_stderr
from .gateway_workers import supervise
from .store_cmd import store_addr


def parse_user(_ctx: object, _param: object, values: tuple[str, ...]) -> list[tuple[str, str, str]]:
    users = []
    for v in values:
        name, password, key_file = (v.split(":", 2) + ["", ""])[:3]
        if not (name and password and key_file) or name == "default":
            raise click.BadParameter(
                f"expected NAME:PASSWORD:KEYFILE (NAME not default), got {v!r}"
            )
        users.append((name, password, key_file))
    return users


@click.command("redis")
@click.option(
    "--listen",
    default="127.0.0.1:6379",
    show_default=True,
    callback=store_addr,
    help="HOST:PORT to serve.",
)
@click.option(
    "--cluster",
    envvar=CLUSTER_ENV,
    required=True,
    metavar="HOST:PORT[,...]",
    help=f"Stores to contact; default: ${CLUSTER_ENV}.",
)
@key_options("The default user's")
@click.option(
    "--pipeline-order",
    type=click.Choice(["connection", "key"]),
    default="connection",
    show_default=True,
    help="connection: a connection's commands run one after another (Redis); key: only "
    "commands on the same key keep their order (Redis Cluster's guarantee across slots), "
    "so a pipeline's commands on different keys are in the cluster at once.",
)
@click.option("--requirepass", default=None, help="Clients AUTH with this password (default user).")
@click.option(
    "--user",
    "users",
    multiple=True,
    callback=parse_user,
    metavar="NAME:PASSWORD:KEYFILE",
    help="A user AUTH NAME PASSWORD makes a connection act as: its commands reach the "
    "cluster with KEYFILE's key, whose role the stores enforce. Repeatable.",
)
@click.option(
    "--metrics-addr",
    default=None,
    callback=store_addr,
    help="HOST:PORT serving the gateway's Prometheus metrics.",
)
@click.option(
    "--timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds per cluster operation, retries included.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Gateway processes sharing LISTEN (SO_REUSEPORT), each with its own cluster "
    "connections: one Python process uses one core, so throughput grows with workers up "
    "to the cores the stores leave free. The pipeline order holds per connection.",
)
@click.option("--worker", is_flag=True, hidden=True, help="Run as one of --workers' processes.")
@log_level_option
def redis(
    listen: str, cluster: str, key_file: str | None, cluster_keys: str | None,
    pipeline_order: str, requirepass: str | None, users: list[tuple[str, str, str]],
    metrics_addr: str | None,
    timeout: float, workers: int, worker: bool, log_level: str,
) -> None:  # fmt: skip
    """Serve RESP2/RESP3 on LISTEN, mapping commands onto the cluster."""
    log_to_stderr(log_level, "redis-gateway")
    if workers > 1 and not worker:
        raise SystemExit(supervise(workers, metrics_addr))
    registry = CollectorRegistry()
    if metrics_addr is not None and not worker:
        host, _, port = metrics_addr.rpartition(":")
        start_http_server(int(port), host, registry)
    if key_file is None and cluster_keys is None:
        key_file, cluster_keys = known_keys(cluster)
    access = Access(cluster, cluster_keys, key_file, requirepass, users, timeout)
    options = GatewayServerOptions(registry, pipeline_order, reuse_port=worker)
    uvloop.run(_serve(listen, access, options))


@dataclass(frozen=True)
class Access:
    """How the gateway's users reach the cluster."""

    cluster: str
    cluster_keys: str | None
    key_file: str | None
    requirepass: str | None
    users: list[tuple[str, str, str]]
    timeout: float


@dataclass(frozen=True)
class GatewayServerOptions:
    registry: CollectorRegistry
    order: str
    reuse_port: bool


async def _serve(listen: str, access: Access, options: GatewayServerOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:

        async def connect(key: str | None) -> AsyncClient:
            client = AsyncClient(
                access.cluster, access.timeout, key=key, cluster_keys=access.cluster_keys
            )
            return await stack.enter_async_context(client)

        default = None
        if access.key_file is not None or access.requirepass is not None or not access.users:
            default = User((access.requirepass or "").encode(), await connect(access.key_file))
        named = {n.encode(): User(p.encode(), await connect(k)) for n, p, k in access.users}
        host, _, port = listen.rpartition(":")
        server = GatewayServer(Gateway(default, named), options.registry, options.order)
        listening = await server.serve(host, int(port), options.reuse_port)
        logging.getLogger("multiraft").info("redis gateway on %s", listen)
        async with listening:
            await stop.wait()
