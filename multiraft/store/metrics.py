"""What a store counts for Prometheus.

The loop bumps plain ints and bucket lists (no locks, no prometheus_client
objects in the hot path); `StoreCollector` turns them into metric families
when Prometheus scrapes, in prometheus_client's HTTP thread. It copies each
dict and list first (one C-level copy, atomic under the GIL), so a scrape
never sees a dict change size under it. What needs the store's state
(regions, leaders, quiet regions, log entries, which stores are live) is
taken by the loop once per gossip round into `view`, replaced whole.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..raft import MessageType

SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COUNTS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Buckets:
    """A histogram's buckets, counted the cheap way (one bisect per value)."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> tuple[list[tuple[str, float]], float]:
        """Prometheus buckets ("le", cumulative count), and the sum."""
        counts, total, out = list(self.counts), 0, []
        for bound, n in zip((*self.bounds, float("inf")), counts, strict=True):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(total)))
        return out, self.sum


class StoreMetrics:
    def __init__(self, store_id: int) -> None:
        self.store_id = store_id
        self.requests: dict[tuple[str, str], int] = {}
        """(request op, "ok" or the error kind) -> answers."""
        self.request_seconds: dict[str, Buckets] = {}
        """Request op -> time from the turn that took a request in to the
        turn that answered it."""
        self.proposals: dict[str, int] = {}
        """"write", "split", "conf_change" -> entries proposed."""
        self.raft_sent: dict[int, int] = {}
        self.raft_received: dict[int, int] = {}
        """Raft message type -> messages (coalesced heartbeats counted one by one)."""
        self.turn_seconds = Buckets(SECONDS)
        self.commit_seconds = Buckets(SECONDS)
        self.entries_per_commit = Buckets(COUNTS)
        self.snapshots: dict[str, int] = {}
        """"sent" / "received" -> snapshots streamed in full."""
        self.view: dict[str, Any] = {}
        """Gauges the loop takes once a second (`StoreMetrics.take_view`)."""

    def answered(self, op: str, result: str, seconds: float) -> None:
        key = (op, result)
        self.requests[key] = self.requests.get(key, 0) + 1
        buckets = self.request_seconds.get(op)
        if buckets is None:
            buckets = self.request_seconds[op] = Buckets(SECONDS)
        buckets.observe(seconds)

    def count(self, table: dict[Any, int], key: Any, n: int = 1) -> None:
        table[key] = table.get(key, 0) + n

    def requests_total(self) -> int:
        return sum(self.requests.values())


class StoreCollector(Collector):
    """Metric families from a `StoreMetrics`, built at scrape time."""

    def __init__(self, metrics: StoreMetrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m, store = self.m, str(self.m.store_id)
        requests = CounterMetricFamily(
            "multiraft_requests", "Client requests answered.", labels=["store", "op", "result"]
        )
        for (op, result), n in dict(m.requests).items():
            requests.add_metric([store, op, result], n)
        yield requests
        latency = HistogramMetricFamily(
            "multiraft_request_seconds",
            "Time from the turn that took a request in to the turn that answered it.",
            labels=["store", "op"],
        )
        for op, buckets in dict(m.request_seconds).items():
            latency.add_metric([store, op], *buckets.cumulative())
        yield latency
        yield _counters("multiraft_proposals", "Raft entries proposed.", "kind", m.proposals, store)
        sent, received = _by_type(m.raft_sent), _by_type(m.raft_received)
        yield _counters("multiraft_raft_messages_sent", "Raft messages sent.", "type", sent, store)
        yield _counters(
            "multiraft_raft_messages_received", "Raft messages received.", "type", received, store
        )
        yield _counters(
            "multiraft_snapshots", "Snapshots streamed in full.", "direction", m.snapshots, store
        )
        for name, doc, buckets in (
            ("turn_seconds", "One pass of the store loop, input to output.", m.turn_seconds),
            ("lmdb_commit_seconds", "A turn's LMDB commit, fsync included.", m.commit_seconds),
            ("entries_per_commit", "Raft entries one LMDB commit writes.", m.entries_per_commit),
        ):
            family = HistogramMetricFamily(f"multiraft_{name}", doc, labels=["store"])
            family.add_metric([store], *buckets.cumulative())
            yield family
        yield from _view(m.view, store)


def _by_type(table: dict[int, int]) -> dict[str, int]:
    return {MessageType(t).name.lower(): n for t, n in dict(table).items()}


def _counters(name: str, doc: str, label: str, table: dict[str, int], store: str) -> Metric:
    family = CounterMetricFamily(name, doc, labels=["store", label])
    for key, n in dict(table).items():
        family.add_metric([store, key], n)
    return family


def _view(view: dict[str, Any], store: str) -> Iterator[Metric]:
    for name, doc in (
        ("regions", "Replicas this store holds."),
        ("leaders", "Regions this store leads."),
        ("quiet_regions", "Replicas that are quiet (hibernated)."),
        ("raft_log_entries", "Raft log entries kept, all regions together."),
        ("apply_buffer_bytes", "Applied data waiting in memory for LMDB."),
    ):
        if name in view:
            yield _gauge(name, doc, store, view[name])
    peers = GaugeMetricFamily(
        "multiraft_store_up",
        "1 if this store heard from that store recently, else 0.",
        labels=["store", "peer"],
    )
    for peer, up in view.get("store_up", {}).items():
        peers.add_metric([store, str(peer)], 1.0 if up else 0.0)
    yield peers


def _gauge(name: str, doc: str, store: str, value: float) -> Metric:
    family = GaugeMetricFamily(f"multiraft_{name}", doc, labels=["store"])
    family.add_metric([store], value)
    return family
