"""Size limits and argument checks shared by the client and the store.

The client checks them before sending so a user sees `InvalidRequest` at once
instead of a round trip; the store imports the same constants so both sides
refuse exactly the same requests.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import InvalidRequest

MAX_KEY_SIZE = 4 * 1024
"""The largest key, in bytes."""

MAX_VALUE_SIZE = 8 * 1024 * 1024
"""The largest value, in bytes (well under the transport's frame limit)."""

MAX_SCAN_LIMIT = 10_000
"""The most rows one scan request asks a store for; longer scans page."""

MAX_SPLIT_KEYS = 1000
"""The most keys one split request cuts its region at (one Raft entry)."""

WRITE_WINDOW = 1024
"""A client starts write seq N only once every seq <= N - WRITE_WINDOW was
answered, so at most WRITE_WINDOW of its answers are unacknowledged at any
time. A store's session table must keep more answers per client than this
(and evict the lowest seq first) for retries to stay exactly-once."""


class InvalidArgumentType(InvalidRequest, TypeError):
    """An argument of the wrong type: both an `InvalidRequest` (the documented
    error) and a `TypeError` (what Python callers expect)."""


def check_key(key: Any, what: str = "key") -> bytes:
    """Return `key` if it is bytes of an acceptable size, else raise."""
    if not isinstance(key, bytes):
        raise InvalidArgumentType(f"{what} must be bytes, not {type(key).__name__}")
    if len(key) > MAX_KEY_SIZE:
        raise InvalidRequest(f"{what} of {len(key)} bytes exceeds {MAX_KEY_SIZE}")
    return key


def check_value(value: Any, what: str = "value") -> bytes:
    """Return `value` if it is bytes of an acceptable size, else raise."""
    if not isinstance(value, bytes):
        raise InvalidArgumentType(f"{what} must be bytes, not {type(value).__name__}")
    if len(value) > MAX_VALUE_SIZE:
        raise InvalidRequest(f"{what} of {len(value)} bytes exceeds {MAX_VALUE_SIZE}")
    return value


def check_optional_value(value: Any, what: str) -> bytes | None:
    """Like `check_value`, but `None` (meaning "absent") is allowed."""
    return None if value is None else check_value(value, what)


def check_store_addr(addr: object) -> str:
    """`addr` if it is a store address ("HOST:PORT", port 1-65535); raises
    TypeError or ValueError otherwise, before it can reach a socket or the
    store list."""
    if not isinstance(addr, str):
        raise TypeError(f"a store address is a string, not {type(addr).__name__}")
    match = _STORE_ADDR.fullmatch(addr)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ValueError(f"store address must be HOST:PORT, not {addr!r}")
    return addr


_STORE_ADDR = re.compile(
    r"(?P<host>\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9._-]{1,253}):(?P<port>[0-9]{1,5})"
)
"""A host name, an IPv4 address or a bracketed IPv6 one, and a port: no
spaces, control characters or other bytes a peer's gossip could slip into
a ZeroMQ endpoint or a log line."""
