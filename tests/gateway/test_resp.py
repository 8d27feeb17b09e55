from __future__ import annotations

import hiredis
import pytest

from multiraft.gateway.resp import OK, RedisError, Status, encode


def parse(data: bytes, proto: int) -> object:
    reader = hiredis.Reader()
    reader.feed(data)
    return reader.gets()


@pytest.mark.parametrize("proto", [2, 3])
def test_values_round_trip_through_hiredis(proto: int) -> None:
    for value in (b"", b"x\r\ny", 0, -5, 1 << 62, [b"a", [1, None]], []):
        assert parse(encode(value, proto), proto) == value
    assert parse(encode(OK, proto), proto) == b"OK"
    assert parse(encode(Status("PONG"), proto), proto) == b"PONG"
    err = parse(encode(RedisError("ERR bad\r\nthing"), proto), proto)
    assert isinstance(err, hiredis.ReplyError) and str(err) == "ERR bad thing"


def test_null_and_maps_differ_between_resp2_and_resp3() -> None:
    assert encode(None, 2) == b"$-1\r\n"
    assert encode(None, 3) == b"_\r\n"
    assert encode({"a": 1}, 2) == b"*2\r\n$1\r\na\r\n:1\r\n"
    assert encode({"a": 1}, 3) == b"%1\r\n$1\r\na\r\n:1\r\n"
    assert parse(encode({"a": 1}, 3), 3) == {b"a": 1}
