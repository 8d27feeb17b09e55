"""Which nemeses a run gets: all that can run here by default, each left out
with its reason; one asked for by name that cannot run is refused."""

from __future__ import annotations

import pytest

from multiraft.verify import netns
from multiraft.verify.nemesis import NEMESES
from multiraft.verify.runner import Unavailable, plan


@pytest.fixture
def no_netns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns, "available", lambda: "needs root (network namespaces)")


@pytest.fixture
def with_netns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns, "available", lambda: None)


def test_all_on_three_stores_leaves_out_move_and_says_why(with_netns: None) -> None:
    kinds, skipped = plan(None, local=True, stores=3, replicas=3)
    assert kinds == ["kill", "pause", "partition", "split", "transfer"]
    assert list(skipped) == ["move"] and "--stores 5" in skipped["move"]


def test_all_on_five_stores_runs_every_nemesis(with_netns: None) -> None:
    kinds, skipped = plan(None, local=True, stores=5, replicas=3)
    assert kinds == ["kill", "pause", "partition", "split", "transfer", "move"] and skipped == {}


def test_partition_is_left_out_or_refused_without_namespaces(no_netns: None) -> None:
    kinds, skipped = plan(None, local=True, stores=5, replicas=3)
    assert "partition" not in kinds and skipped == {"partition": "needs root (network namespaces)"}
    with pytest.raises(Unavailable, match=r"nemesis partition cannot run here: needs root"):
        plan(["kill", "partition"], local=True, stores=3, replicas=3)


def test_against_a_cluster_only_admin_faults(no_netns: None) -> None:
    kinds, skipped = plan(None, local=False, stores=4, replicas=3)
    assert kinds == ["split", "transfer", "move"]
    assert set(skipped) == {"kill", "pause", "partition"}
    assert "--against" in skipped["kill"]
    with pytest.raises(Unavailable, match="nemesis kill cannot run here"):
        plan(["kill"], local=False, stores=4, replicas=3)


def test_named_nemeses_run_as_asked_without_duplicates(no_netns: None) -> None:
    assert plan(["split", "kill", "split"], local=True, stores=3, replicas=3) == (
        ["split", "kill"],
        {},
    )
    assert plan([], local=True, stores=3, replicas=3) == ([], {})


def test_without_an_admin_key_no_admin_faults(no_netns: None) -> None:
    kinds, skipped = plan(None, local=False, stores=0, replicas=3, admin=False)
    assert kinds == [] and set(skipped) == set(NEMESES)
    assert skipped["split"].startswith("needs an admin key")
    with pytest.raises(Unavailable, match="nemesis move cannot run here: needs an admin key"):
        plan(["move"], local=False, stores=0, replicas=3, admin=False)
