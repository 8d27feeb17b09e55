"""Store addresses: what gossip, joins and the CLI may hand to ZeroMQ."""

from __future__ import annotations

import pytest

from multiraft.protocol.limits import check_store_addr


@pytest.mark.parametrize(
    "addr", ["127.0.0.1:20161", "localhost:1", "store-2.example.org:65535", "[::1]:20161"]
)
def test_host_port_addresses_pass(addr: str) -> None:
    assert check_store_addr(addr) == addr


@pytest.mark.parametrize(
    "addr",
    [
        "127.0\x0e4.1:9",  # a control character
        "127.0.0.1 :9",
        "host/evil:9",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:²",  # a digit to str.isdigit, not to int
        "127.0.0.1",
        ":9",
        "[::1:9",
        "a" * 254 + ":9",
    ],
)
def test_anything_else_is_refused(addr: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        check_store_addr(addr)


def test_a_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        check_store_addr(20161)
