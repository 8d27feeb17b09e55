"""RESP2 and RESP3 replies (the requests are parsed by hiredis' Reader).

Python values map onto RESP types: `Status` a simple string, `RedisError`
an error, int an integer, bytes a bulk string, None the null (`$-1` in
RESP2, `_` in RESP3), list an array, dict a map (a flat array in RESP2).
"""

from __future__ import annotations

from typing import Any


class Status(str):
    """A simple string reply, e.g. OK or PONG."""


OK = Status("OK")


class RedisError(Exception):
    """An error reply; the message starts with its code (ERR, NOPERM, ...)."""


def encode(value: Any, proto: int = 2) -> bytes:
    out: list[bytes] = []
    _encode(value, proto, out)
    return b"".join(out)


def _encode(value: Any, proto: int, out: list[bytes]) -> None:
    if value is None:
        out.append(b"_\r\n" if proto == 3 else b"$-1\r\n")
    elif isinstance(value, Status):
        out.append(b"+" + value.encode() + b"\r\n")
    elif isinstance(value, RedisError):
        message = " ".join(str(value).split())  # one line, whatever it said
        out.append(b"-" + message.encode("utf-8", "replace") + b"\r\n")
    elif isinstance(value, int):
        out.append(b":%d\r\n" % value)
    elif isinstance(value, bytes | bytearray | str):
        data = value.encode() if isinstance(value, str) else bytes(value)
        out += [b"$%d\r\n" % len(data), data, b"\r\n"]
    else:
        _encode_aggregate(value, proto, out)


def _encode_aggregate(value: Any, proto: int, out: list[bytes]) -> None:
    if isinstance(value, list | tuple):
        out.append(b"*%d\r\n" % len(value))
        for item in value:
            _encode(item, proto, out)
    elif isinstance(value, dict):
        head = b"%%%d\r\n" % len(value) if proto == 3 else b"*%d\r\n" % (2 * len(value))
        out.append(head)
        for k, v in value.items():
            _encode(k, proto, out)
            _encode(v, proto, out)
    else:
        raise TypeError(f"no RESP type for {type(value).__name__}")
