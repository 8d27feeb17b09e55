"""Redis commands on a multiraft cluster, through one `AsyncClient`.

Every single-key command is linearizable: reads are the cluster's
linearizable gets; read-modify-writes (INCR, APPEND, SET with NX, XX or
GET, GETSET, DEL's count) are compare-and-set loops, so a concurrent write
makes the loop read again instead of being overwritten. Commands on several
keys (MGET, MSET, DEL, EXISTS) are one such operation per key, not one
atomic step: there are no transactions, and MULTI/EXEC/WATCH say so. There
are no TTLs either: SET's EX/PX/EXAT/PXAT/KEEPTTL are refused.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from ..client import AsyncClient
from ..errors import MultiraftError, PermissionDenied, Timeout
from ..protocol.limits import MAX_SCAN_LIMIT
from .resp import OK, RedisError, Status

VERSION = "7.2.0"
"""The Redis version the gateway answers HELLO and INFO with (the command
set it follows), not multiraft's."""
INT64 = (-(1 << 63), (1 << 63) - 1)


@dataclass
class User:
    """Who AUTH names: a password, and the cluster connection made with the
    user's own key, so the stores enforce its role (readonly, readwrite...)."""

    password: bytes
    client: AsyncClient


@dataclass
class Session:
    """One client connection's state."""

    id: int
    client: AsyncClient | None
    """The cluster connection its commands use: the default user's, or the
    one of the user it AUTHed as; None until AUTH when one is required."""
    proto: int = 2
    name: bytes | None = None
    closing: bool = False

    @property
    def cluster(self) -> AsyncClient:
        """The cluster connection of a session past AUTH (`execute` checks)."""
        assert self.client is not None
        return self.client


@dataclass
class Gateway:
    default: User | None
    """AUTH's default user (`--requirepass`) or, without a password, the
    connection every session starts with; None: only named users."""
    users: dict[bytes, User] = field(default_factory=dict)
    """Named users (`--user NAME:PASSWORD:KEYFILE`)."""

    @property
    def open(self) -> bool:
        """No password anywhere: AUTH has nothing to check."""
        return self.default is not None and not self.default.password and not self.users

    def session(self, session_id: int) -> Session:
        """A new connection: the default user's, unless it needs a password."""
        default = self.default
        return Session(session_id, default.client if default and not default.password else None)


Handler = Callable[[Gateway, Session, list[bytes]], Awaitable[Any]]


@dataclass(frozen=True)
class Command:
    handler: Handler
    arity: int
    """Redis' convention: N exactly N arguments with the name, -N at least N."""
    before_auth: bool = False


COMMANDS: dict[bytes, Command] = {}


KEYS_FIRST = frozenset(b"get set setnx getset incr decr incrby decrby append strlen".split())
KEYS_ALL = frozenset(b"mget exists del".split())


def command_keys(argv: list[bytes]) -> list[bytes] | None:
    """The keys a command touches, or None for one that touches the session
    or the whole key space (it then waits for everything before it)."""
    name = argv[0].lower()
    if name in KEYS_FIRST and len(argv) > 1:
        return [argv[1]]
    if name in KEYS_ALL:
        return argv[1:]
    if name == b"mset":
        return argv[1::2]
    return None


def command(name: str, arity: int, before_auth: bool = False) -> Callable[[Handler], Handler]:
    def register(f: Handler) -> Handler:
        COMMANDS[name.encode()] = Command(f, arity, before_auth)
        return f

    return register


async def execute(gw: Gateway, session: Session, argv: list[bytes]) -> Any:
    """The reply to one command (a value, or a RedisError to send)."""
    name = argv[0].lower()
    cmd = COMMANDS.get(name)
    if cmd is None:
        shown = " ".join(f"'{a.decode('utf-8', 'replace')}'" for a in argv[1:4])
        return RedisError(
            f"ERR unknown command '{argv[0].decode('utf-8', 'replace')}', "
            f"with args beginning with: {shown}"
        )
    if (cmd.arity > 0 and len(argv) != cmd.arity) or len(argv) < -cmd.arity:
        return RedisError(f"ERR wrong number of arguments for '{name.decode()}' command")
    if session.client is None and not cmd.before_auth:
        return RedisError("NOAUTH Authentication required.")
    try:
        return await cmd.handler(gw, session, argv[1:])
    except RedisError as e:
        return e
    except PermissionDenied as e:
        return RedisError(f"NOPERM {e}")
    except Timeout as e:
        return RedisError(f"ERR multiraft timeout (a write may or may not have happened): {e}")
    except MultiraftError as e:
        return RedisError(f"ERR multiraft {type(e).__name__}: {e}")


# ---- connection ---------------------------------------------------------


@command("ping", -1)
async def ping(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    if len(args) > 1:
        raise RedisError("ERR wrong number of arguments for 'ping' command")
    return args[0] if args else Status("PONG")


@command("echo", 2)
async def echo(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    return args[0]


@command("quit", -1, before_auth=True)
async def quit_(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    s.closing = True
    return OK


@command("select", 2)
async def select(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    if args[0] != b"0":
        raise RedisError("ERR DB index is out of range")
    return OK


@command("auth", -2, before_auth=True)
async def auth(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    if len(args) > 2:
        raise RedisError("ERR syntax error")
    if gw.open:
        raise RedisError(
            "ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?"
        )
    name, password = (b"default", args[0]) if len(args) == 1 else (args[0], args[1])
    user = gw.default if name == b"default" else gw.users.get(name)
    if user is None or not user.password or not hmac.compare_digest(password, user.password):
        raise RedisError("WRONGPASS invalid username-password pair or user is disabled.")
    s.client = user.client
    return OK


@command("hello", -1, before_auth=True)
async def hello(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    rest = list(args)
    proto = s.proto
    if rest:
        try:
            proto = int(rest.pop(0))
        except ValueError:
            raise RedisError("ERR Protocol version is not an integer or out of range") from None
        if proto not in (2, 3):
            raise RedisError("NOPROTO unsupported protocol version")
    while rest:
        opt = rest.pop(0).lower()
        if opt == b"auth" and len(rest) >= 2:
            await auth(gw, s, [rest.pop(0), rest.pop(0)])
        elif opt == b"setname" and rest:
            s.name = rest.pop(0)
        else:
            raise RedisError(f"ERR Syntax error in HELLO option '{opt.decode('utf-8', 'replace')}'")
    if s.client is None:
        raise RedisError("NOAUTH HELLO must be called with the client already authenticated")
    s.proto = proto
    return {
        "server": "redis",
        "version": VERSION,
        "proto": proto,
        "id": s.id,
        "mode": "standalone",
        "role": "master",
        "modules": [],
    }


@command("client", -2)
async def client_(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    sub = args[0].lower()
    if sub == b"setname" and len(args) == 2:
        s.name = args[1]
        return OK
    if sub == b"getname" and len(args) == 1:
        return s.name
    if sub == b"id" and len(args) == 1:
        return s.id
    if sub == b"setinfo" and len(args) == 3:
        return OK  # redis-py sends its library name and version
    raise RedisError(f"ERR unknown subcommand '{sub.decode('utf-8', 'replace')}' for 'client'")


@command("config", -2)
async def config(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """The gateway has no runtime settings: CONFIG GET matches none (as Redis
    answers an unknown one; redis-benchmark asks), CONFIG SET says so."""
    sub = args[0].lower()
    if sub == b"get" and len(args) >= 2:
        return {}
    if sub in (b"set", b"resetstat", b"rewrite"):
        raise RedisError("ERR the multiraft gateway has no runtime configuration")
    raise RedisError(f"ERR unknown subcommand '{sub.decode('utf-8', 'replace')}' for 'config'")


@command("command", -1)
async def command_(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """Enough for redis-cli: it asks COMMAND DOCS for hints and copes with none."""
    sub = args[0].lower() if args else b""
    if sub == b"count":
        return len(COMMANDS)
    if sub in (b"", b"docs", b"info"):
        return {} if sub == b"docs" else []
    raise RedisError(f"ERR unknown subcommand '{sub.decode('utf-8', 'replace')}' for 'command'")


@command("info", -1)
async def info(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    sections = {a.lower() for a in args} or {b"server", b"keyspace", b"cluster"}
    lines: list[str] = []
    if sections & {b"server", b"all", b"everything"}:
        lines += ["# Server", f"redis_version:{VERSION}", f"multiraft:{version('multiraft')}", ""]
    if sections & {b"keyspace", b"all", b"everything"}:
        lines += ["# Keyspace", f"db0:keys={await _count_keys(s.cluster)},expires=0", ""]
    if sections & {b"cluster", b"all", b"everything"}:
        regions = await s.cluster.regions()
        stores = {p.store_id for r, _ in regions for p in r.peers}
        leaderless = sum(1 for _, leader in regions if leader is None)
        lines += [
            "# Cluster",
            "cluster_enabled:0",
            f"multiraft_stores:{len(stores)}",
            f"multiraft_regions:{len(regions)}",
            f"multiraft_regions_without_leader:{leaderless}",
            "",
        ]
    return "\r\n".join(lines).encode()


# ---- strings ------------------------------------------------------------


@command("get", 2)
async def get(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    return await s.cluster.get(args[0])


@command("set", -3)
async def set_(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    key, value = args[0], args[1]
    opts = [o.upper() for o in args[2:]] if len(args) > 2 else []
    nx, xx, want_old = b"NX" in opts, b"XX" in opts, b"GET" in opts
    if any(o in (b"EX", b"PX", b"EXAT", b"PXAT", b"KEEPTTL") for o in opts):
        raise RedisError(
            "ERR multiraft keys do not expire: EX/PX/EXAT/PXAT/KEEPTTL are not supported"
        )
    if any(o not in (b"NX", b"XX", b"GET") for o in opts) or (nx and xx):
        raise RedisError("ERR syntax error")
    if not (nx or xx or want_old):
        await s.cluster.put(key, value)
        return OK
    if nx and not want_old:
        return OK if await s.cluster.cas(key, None, value) else None
    while True:
        old = await s.cluster.get(key)
        if (nx and old is not None) or (xx and old is None):
            return old if want_old else None
        if await s.cluster.cas(key, old, value):
            return old if want_old else OK


@command("setnx", 3)
async def setnx(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    return 1 if await s.cluster.cas(args[0], None, args[1]) else 0


@command("getset", 3)
async def getset(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    return await set_(gw, s, [args[0], args[1], b"GET"])


@command("del", -2)
async def del_(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    removed = await asyncio.gather(*(_delete(s.cluster, k) for k in args))
    return sum(removed)


async def _delete(client: AsyncClient, key: bytes) -> int:
    while True:
        old = await client.get(key)
        if old is None:
            return 0
        if await client.cas(key, old, None):
            return 1


@command("exists", -2)
async def exists(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    values = await asyncio.gather(*(s.cluster.get(k) for k in args))
    return sum(1 for v in values if v is not None)


@command("mget", -2)
async def mget(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    return list(await asyncio.gather(*(s.cluster.get(k) for k in args)))


@command("mset", -3)
async def mset(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    if len(args) % 2:
        raise RedisError("ERR wrong number of arguments for 'mset' command")
    await asyncio.gather(*(s.cluster.put(args[i], args[i + 1]) for i in range(0, len(args), 2)))
    return OK


@command("incr", 2)
async def incr(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    return await _add(s.cluster, args[0], 1)


@command("decr", 2)
async def decr(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    return await _add(s.cluster, args[0], -1)


@command("incrby", 3)
async def incrby(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    return await _add(s.cluster, args[0], _int(args[1]))


@command("decrby", 3)
async def decrby(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    return await _add(s.cluster, args[0], -_int(args[1]))


def _int(raw: bytes | None) -> int:
    try:
        n = int(raw or b"0")
    except ValueError:
        raise RedisError("ERR value is not an integer or out of range") from None
    if not INT64[0] <= n <= INT64[1] or (raw and raw.strip() != raw):
        raise RedisError("ERR value is not an integer or out of range")
    return n


async def _add(client: AsyncClient, key: bytes, by: int) -> int:
    while True:
        old = await client.get(key)
        new = _int(old) + by
        if not INT64[0] <= new <= INT64[1]:
            raise RedisError("ERR increment or decrement would overflow")
        if await client.cas(key, old, str(new).encode()):
            return new


@command("append", 3)
async def append(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    while True:
        old = await s.cluster.get(args[0])
        new = (old or b"") + args[1]
        if await s.cluster.cas(args[0], old, new):
            return len(new)


@command("strlen", 2)
async def strlen(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    return len(await s.cluster.get(args[0]) or b"")


# ---- keyspace -----------------------------------------------------------


@command("scan", -2)
async def scan(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """The cursor is the next key to look at, as a decimal number (clients
    parse cursors as integers): it walks key order across regions, and a
    key present for the whole walk is returned exactly once."""
    start = _cursor_key(args[0])
    pattern, count = None, 10
    rest = args[1:]
    while rest:
        opt = rest.pop(0).upper()
        if opt == b"MATCH" and rest:
            pattern = rest.pop(0).decode("latin-1").replace("[^", "[!")
        elif opt == b"COUNT" and rest:
            count = _int(rest.pop(0))
            if count < 1:
                raise RedisError("ERR syntax error")
        else:
            raise RedisError("ERR syntax error")
    count = min(count, MAX_SCAN_LIMIT)
    pairs = await s.cluster.scan(start, b"", limit=count)
    keys = [k for k, _ in pairs]
    cursor = b"0" if len(pairs) < count else _key_cursor(keys[-1] + b"\x00")
    if pattern is not None:
        keys = [k for k in keys if fnmatch.fnmatchcase(k.decode("latin-1"), pattern)]
    return [cursor, keys]


def _cursor_key(raw: bytes) -> bytes:
    try:
        n = int(raw)
    except ValueError:
        raise RedisError("ERR invalid cursor") from None
    if n < 0:
        raise RedisError("ERR invalid cursor")
    if n == 0:
        return b""
    data = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if data[:1] != b"\x01":
        raise RedisError("ERR invalid cursor")
    return data[1:]


def _key_cursor(key: bytes) -> bytes:
    return str(int.from_bytes(b"\x01" + key, "big")).encode()


@command("dbsize", 1)
async def dbsize(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """A full scan: it costs what the key space is."""
    return await _count_keys(s.cluster)


async def _count_keys(client: AsyncClient) -> int:
    total, start = 0, b""
    while True:
        pairs = await client.scan(start, b"", limit=MAX_SCAN_LIMIT)
        total += len(pairs)
        if len(pairs) < MAX_SCAN_LIMIT:
            return total
        start = pairs[-1][0] + b"\x00"


async def _no_transactions(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    raise RedisError("ERR multiraft has no transactions: MULTI/EXEC/WATCH are not supported")


for _name in ("multi", "exec", "discard", "watch", "unwatch"):
    COMMANDS[_name.encode()] = Command(_no_transactions, -1)
