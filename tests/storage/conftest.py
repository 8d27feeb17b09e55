from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from multiraft.storage import Engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Engine(tmp_path / "store", map_size=1 << 20) as e:
        yield e
