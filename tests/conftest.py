from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from multiraft.logs import Throttled


@pytest.fixture(autouse=True)
def _fresh_log_throttles() -> Iterator[None]:
    """Each test sees the first line of every kind: the stores' throttled
    loggers (module globals) forget what earlier tests logged."""
    for name, module in list(sys.modules.items()):
        if name.startswith("multiraft."):
            for value in list(vars(module).values()):
                if isinstance(value, Throttled):
                    value.forget()
    yield
