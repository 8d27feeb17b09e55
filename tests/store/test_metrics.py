"""The store's Prometheus metrics: what the loop counts, as a scrape sees it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from multiraft.store.metrics import SECONDS, Buckets, StoreCollector, StoreMetrics
from multiraft.store.store import Store

from .test_service import START, Driver, config, read_args, write_args


@pytest.fixture
def leader(tmp_path: Path) -> Iterator[Driver]:
    store = Store(config(tmp_path), START)
    try:
        d = Driver(store)
        d.lead()
        yield d
    finally:
        store.close()


def scrape(metrics: StoreMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed back by prometheus_client."""
    registry = CollectorRegistry()
    registry.register(StoreCollector(metrics))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_buckets_are_cumulative_with_an_inf_bucket() -> None:
    b = Buckets((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 7.0):
        b.observe(v)
    assert b.cumulative() == ([("0.1", 2.0), ("1.0", 3.0), ("+Inf", 4.0)], 7.65)


def test_a_scrape_shows_what_the_store_did(leader: Driver) -> None:
    m = leader.store.ctx.metrics
    before = scrape(m)
    for i in range(3):
        assert leader.call("put", write_args(key=b"k%d" % i, value=b"v")).ok
    assert leader.call("get", read_args(key=b"k0")).ok
    assert not leader.call("get", read_args(region=99, key=b"k0")).ok
    leader.turn(tick=True)
    leader.now += 1.0
    for _ in range(20):  # a gossip round takes the gauges
        leader.turn(tick=True)
    after = scrape(m)
    store = ("store", "1")

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted({**dict([store]), **labels}.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("multiraft_requests_total", op="put", result="ok") == 3
    assert moved("multiraft_requests_total", op="get", result="ok") == 1
    assert moved("multiraft_requests_total", op="get", result="RegionNotFound") == 1
    assert moved("multiraft_request_seconds_count", op="put") == 3
    assert moved("multiraft_request_seconds_bucket", op="put", le="+Inf") == 3
    assert moved("multiraft_proposals_total", kind="write") >= 1
    assert moved("multiraft_entries_per_commit_count") >= 1
    assert after[("multiraft_regions", (store,))] == 1
    assert after[("multiraft_leaders", (store,))] == 1
    assert after[("multiraft_raft_log_entries", (store,))] >= 3
    assert len(SECONDS) + 1 == sum(
        1
        for (name, labels) in after
        if name == "multiraft_request_seconds_bucket" and ("op", "put") in labels
    )


def test_the_grafana_dashboard_asks_only_for_metrics_a_store_exports() -> None:
    dashboard = json.loads(
        (Path(__file__).parents[2] / "dashboards" / "multiraft.json").read_text()
    )
    m = StoreMetrics(1)
    m.answered("put", "ok", 0.001)
    m.count(m.proposals, "write")
    m.count(m.raft_sent, 3)
    m.count(m.raft_received, 3)
    m.count(m.snapshots, "sent")
    m.view = {
        "regions": 1,
        "leaders": 1,
        "quiet_regions": 0,
        "raft_log_entries": 1,
        "apply_buffer_bytes": 0,
        "store_up": {2: True},
    }
    exported = {name for name, _ in scrape(m)}
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"multiraft_[a-z_]+", target["expr"])
    }
    assert len(asked) >= 12
    assert asked <= exported, asked - exported
