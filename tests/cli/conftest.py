"""Fixtures: a fake store to point the CLI at, and a runner for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result

from multiraft.cli.main import main
from tests.client.fake_store import Cluster, FakeStore

Run = Callable[..., Result]


@pytest.fixture
def fake() -> Iterator[FakeStore]:
    with FakeStore(Cluster(), 1) as s:
        yield s


@pytest.fixture
def run(fake: FakeStore) -> Run:
    """Invoke `multiraft ARGS...` with MULTIRAFT_CLUSTER naming the fake."""

    def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
        runner = CliRunner()
        full_env = {"MULTIRAFT_CLUSTER": fake.addr, **(env or {})}
        return runner.invoke(main, list(args), env=full_env, catch_exceptions=False)

    return invoke
