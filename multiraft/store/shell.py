"""StoreServer: the ZeroMQ shell around a `Store`. It owns the sockets and
the clock; the store owns everything else. One pass of its loop: wait for
frames (until the next tick at most, not at all while the store is busy),
run the store's turn on them, and carry out what it gives back in order:
early Raft frames and answers, the commit (one fsync), the other Raft
frames, then the turn's end (reads served, snapshot chunks, gossip)."""

from __future__ import annotations

import gc
import logging
import time
from functools import partial
from typing import Any

import zmq
from prometheus_client import CollectorRegistry, start_http_server

from ..transport.zmq import Security, Transport
from .config import StoreConfig
from .join import ask_to_join
from .metrics import StoreCollector
from .outbox import ClientFrame, StoreFrame
from .store import Store

log = logging.getLogger(__name__)

GC_THRESHOLDS = (50_000, 20, 100)
"""The cyclic collector's thresholds in a store (Python's: 700, 10, 10). A
busy store makes and drops a few objects per message: at the defaults the
collector ran every few hundred messages (`bench/store_round.py`: 8-12%
of the stores' CPU per put at 256 and 1,024 regions)."""


def settle_collector() -> None:
    """What a store's start loaded (every replica, a million objects at
    10,000 regions) lives as long as the store: keep it out of the cyclic
    collector's full passes, which would otherwise walk it all, and let the
    collector run less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class StoreServer:
    def __init__(self, config: StoreConfig) -> None:
        join = None
        if config.join is not None:
            join = partial(ask_to_join, config.join, config.store_id, config.addr, config.security)
        self.store = Store(config, time.monotonic(), join)
        security = None
        if config.security is not None and self.store.ctx.trust is not None:
            security = Security(config.security.key, self.store.ctx.trust)
        else:
            log.warning(
                "store %d runs in PLAIN mode: no keys, no encryption, "
                "anyone who reaches %s may do anything",
                config.store_id,
                config.addr,
            )
        try:
            self.transport = Transport(config.addr, config.store_id, security=security)
        except Exception:
            self.store.close()
            raise
        settle_collector()
        self.metrics = self.store.ctx.metrics
        self._metrics_server: Any = None
        if config.metrics_addr is not None:
            self._serve_metrics(config.metrics_addr)
        self._addrs_version = (-1, -1)
        self._undelivered: set[int] = set()
        self._stopping = False

    def _serve_metrics(self, addr: str) -> None:
        """Prometheus text on http://ADDR/metrics, from prometheus_client's
        HTTP thread (it reads the loop's counters; see `metrics`)."""
        host, _, port = addr.rpartition(":")
        registry = CollectorRegistry()
        registry.register(StoreCollector(self.metrics))
        try:
            self._metrics_server, _ = start_http_server(int(port), host, registry)
        except Exception:
            self.close()
            raise
        log.info("metrics on http://%s/metrics", addr)

    def stop(self) -> None:
        """Ask the loop to finish its turn and return (safe from a signal handler)."""
        self._stopping = True

    def run(self) -> None:
        busy = False
        try:
            while not self._stopping:
                busy = self.run_once(0 if busy else None)
            self.store.flush_applied()
        finally:
            self.close()

    def run_once(self, wait_ms: int | None = None) -> bool:
        """One pass of the loop; returns whether the store has more to do at
        once. `wait_ms`: how long to wait for input (None: until the next tick)."""
        store = self.store
        if wait_ms is None:
            wait_ms = max(0, int((store.next_tick - time.monotonic()) * 1000))
        inbox = self.transport.recv_all(wait_ms)
        undelivered, self._undelivered = self._undelivered, set()
        start = time.monotonic()
        out = store.turn(inbox, start, undelivered)
        self._connect_new_stores()
        self._send(out.early)
        self._reply(out.replies)
        committing = time.monotonic()
        out.batch.commit()
        committed = time.monotonic()
        self._send(out.late)
        done = store.advance()
        self._reply(done.replies)
        self._send(done.frames)
        if inbox or done.busy:  # an idle tick is not a turn worth timing
            self.metrics.commit_seconds.observe(committed - committing)
            self.metrics.turn_seconds.observe(time.monotonic() - start)
        return done.busy

    def _connect_new_stores(self) -> None:
        book, trust = self.store.ctx.book, self.store.ctx.trust
        version = (book.version, trust.version if trust is not None else 0)
        if version == self._addrs_version:
            return
        self._addrs_version = version
        for store_id, addr in book.addrs.items():
            try:
                self.transport.set_store_addr(store_id, addr)
            except (TypeError, ValueError, zmq.ZMQError) as e:
                log.error("store %d has an unusable address %r: %s", store_id, addr, e)

    def _send(self, frames: list[StoreFrame]) -> None:
        for store_id, frame in frames:
            if not self.transport.send_to_store(store_id, frame):
                self._undelivered.add(store_id)

    def _reply(self, frames: list[ClientFrame]) -> None:
        for identity, frame in frames:
            self.transport.reply(identity, frame)

    def close(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None
        self.store.close()
        self.transport.close()
