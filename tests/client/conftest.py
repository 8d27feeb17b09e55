"""Fixtures: a fake cluster of one or two scripted stores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake_store import Cluster, FakeStore


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


@pytest.fixture
def store1(cluster: Cluster) -> Iterator[FakeStore]:
    with FakeStore(cluster, 1) as s:
        yield s


@pytest.fixture
def store2(cluster: Cluster) -> Iterator[FakeStore]:
    with FakeStore(cluster, 2) as s:
        yield s
