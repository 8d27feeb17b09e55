"""A real store's /metrics endpoint, scraped as Prometheus would."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from multiraft import Client
from multiraft.bench.cluster import free_ports

from .harness import wait_for


def scrape(addr: str) -> dict[str, float]:
    """name{labels} -> value, parsed by prometheus_client's own parser."""
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def test_the_metrics_endpoint_parses_and_its_counters_move(make_cluster) -> None:
    metrics_addr = f"127.0.0.1:{free_ports(1)[0]}"
    c = make_cluster(1, 1, "--metrics-addr", metrics_addr)
    before = scrape(metrics_addr)
    with Client(c.endpoints(), timeout=10) as client:
        for i in range(20):
            client.put(b"m%d" % i, b"v")
        assert client.get(b"m0") == b"v"

    def gauges_taken() -> dict[str, float] | None:
        """A scrape whose gauges a gossip round took after the puts."""
        m = scrape(metrics_addr)
        return m if m.get("multiraft_raft_log_entries{store=1}", 0) >= 20 else None

    after = wait_for("a gossip round after the puts", gauges_taken)
    put_ok = "multiraft_requests_total{op=put,result=ok,store=1}"
    assert after[put_ok] - before.get(put_ok, 0) == 20
    assert after["multiraft_requests_total{op=get,result=ok,store=1}"] >= 1
    assert after["multiraft_request_seconds_count{op=put,store=1}"] >= 20
    assert after["multiraft_proposals_total{kind=write,store=1}"] >= 1
    assert after["multiraft_lmdb_commit_seconds_count{store=1}"] >= 1
    assert after["multiraft_turn_seconds_count{store=1}"] >= 1
    assert after["multiraft_entries_per_commit_sum{store=1}"] >= 20
    assert after["multiraft_regions{store=1}"] == 1
    assert after["multiraft_leaders{store=1}"] == 1
