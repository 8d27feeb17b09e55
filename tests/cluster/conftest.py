from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import LocalCluster


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator:
    """Start clusters on demand; all their processes die with the test."""
    made: list[LocalCluster] = []

    def make(n: int = 3, replicas: int = 3, *extra_args: str, secure: bool = False) -> LocalCluster:
        root = tmp_path / f"cluster-{len(made)}"
        c = LocalCluster(root, n, replicas, *extra_args, secure=secure)
        c.root.mkdir()
        made.append(c)
        c.start_all()
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop_all()


@pytest.fixture(autouse=True)
def _show_store_logs_on_failure(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for log in sorted(tmp_path.glob("cluster-*/store-*.log")):
            print(f"--- {log} ---\n{log.read_text(errors='replace')[-3000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep
