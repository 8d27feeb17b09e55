from __future__ import annotations

import socket
from collections.abc import Callable

import pytest


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def free_addr() -> Callable[[], str]:
    """A factory of "127.0.0.1:PORT" addresses nobody listens on right now."""
    return lambda: f"127.0.0.1:{_free_port()}"
