"""What stores tell each other once a second, and the cluster view it
builds: every store gossips the regions it leads (newer epoch wins on
arrival), so any store can route any key; the stores it knows, so a joined
store becomes known to all; its own statistics, for the scheduling
decisions of the others; and, on a secure store, the trust table (a few
entries: whole each round). The same view answers `regions` and `status`."""

from __future__ import annotations

import logging
import shutil
from typing import Any

from ..logs import Throttled
from ..protocol.region import Region
from ..transport import codec
from .context import StoreContext
from .meta import save_trust
from .operation import peer_life

log = logging.getLogger(__name__)
wire_log = Throttled(log)
"""For what other stores send: bad input must not flood the log."""

GOSSIP_TICKS = 10
"""Ticks between two rounds of gossip (1 s at the default tick)."""
FULL_ROUNDS = 30
"""A round tells every region this store leads once in this many; the
others tell only those whose descriptor or leadership changed (and a store
that came back or joined gets a full round at once)."""
DIRECTORY_WAIT_ROUNDS = 3
"""Gossip rounds a restarted store waits for others' gossip before it
answers directory requests from what it has."""


def send_gossip(ctx: StoreContext, full: bool) -> None:
    """One round: the regions led here (`full`) or those that changed."""
    led = []
    for p in ctx.peers.values():
        if (full or p.gossip_due) and p.is_leader():
            led.append([p.region_wire(), ctx.store_id])
        p.gossip_due = False
    extras = {"regions": led, "stores": ctx.book.addrs, "stats": own_stats(ctx)}
    if ctx.trust is not None:
        extras["trust"] = ctx.trust.to_wire()
    frame = codec.encode_peer_batch(codec.PeerBatch(ctx.cluster_id, ctx.store_id, [], extras))
    for store_id in ctx.book.addrs:
        if store_id != ctx.store_id:
            ctx.outbox.frame(store_id, frame)


def learn(ctx: StoreContext, sender: int, extras: dict[str, Any]) -> None:
    """Take in another store's gossip; malformed parts are logged and dropped."""
    try:
        ctx.book.learn(sender, extras.get("stats"), extras.get("stores", {}), ctx.now)
        _learn_regions(ctx, extras.get("regions", []))
        if ctx.trust is not None and "trust" in extras and ctx.trust.merge(extras["trust"]):
            save_trust(ctx.engine, ctx.trust)
    except (TypeError, ValueError, AttributeError, OverflowError) as e:
        wire_log.warning("bad gossip from store %d: %s", sender, e)


def _learn_regions(ctx: StoreContext, entries: Any) -> None:
    for desc, leader in entries:
        region = Region.from_wire(desc)
        peer = ctx.peers.get(region.id)
        if peer is not None:
            # Our own replica knows better, unless the region's
            # membership moved on without it.
            me = region.peer_on(ctx.store_id)
            stale = me is None or me.peer_id != peer.peer_id
            if stale and region.epoch.conf_ver > peer.region.epoch.conf_ver:
                peer_life.destroy_stale(ctx, peer, region)
            continue
        if ctx.router.update(region) or ctx.router.get(region.id) == region:
            ctx.router.set_leader(region.id, leader)


def own_stats(ctx: StoreContext) -> dict[str, int]:
    disk = shutil.disk_usage(ctx.config.data_dir)
    return {
        "regions": len(ctx.peers),
        "leaders": len(ctx.leaders),
        "quiet": len(ctx.peers) - len(ctx.awake),
        "capacity": disk.total,
        "available": disk.free,
        "requests": ctx.metrics.requests_total(),
    }


def metrics_view(ctx: StoreContext) -> dict[str, Any]:
    """The gauges of `metrics.StoreMetrics.view`, taken once a gossip round
    (one pass over the replicas: about a millisecond per 1,000)."""
    live = set(ctx.book.live(ctx.now))
    log_entries = sum(
        p.storage.last_index() - p.storage.first_index() + 1 for p in ctx.peers.values()
    )
    return {
        "regions": len(ctx.peers),
        "leaders": len(ctx.leaders),
        "quiet_regions": len(ctx.peers) - len(ctx.awake),
        "raft_log_entries": log_entries,
        "apply_buffer_bytes": ctx.applied.bytes_waiting,
        "store_up": {sid: sid in live for sid in ctx.book.addrs if sid != ctx.store_id},
    }


def leader_hint(ctx: StoreContext, region_id: int) -> int | None:
    peer = ctx.peers.get(region_id)
    if peer is not None:
        return peer.leader_store()
    return ctx.router.leader_of(region_id)


def directory_ready(ctx: StoreContext) -> bool:
    """Whether this store's region directory is as complete as gossip
    makes it: it heard another store, or waited out a few gossip rounds
    (the others may be down), or it is alone."""
    waited = ctx.now - ctx.book.started
    return (
        bool(ctx.book.stats)
        or len(ctx.book.addrs) == 1
        or waited > DIRECTORY_WAIT_ROUNDS * GOSSIP_TICKS * ctx.config.tick_interval
    )


def directory(ctx: StoreContext) -> dict[str, Any]:
    """Every region this store knows, with leader hints, and the stores
    (with the key each proves, on a secure store)."""
    regions = [[r.to_wire(), leader_hint(ctx, r.id)] for r in ctx.router.regions()]
    view: dict[str, Any] = {"regions": regions, "stores": dict(ctx.book.addrs)}
    if ctx.trust is not None:
        keys = {sid: ctx.trust.store_key(sid) for sid in ctx.book.addrs}
        view["keys"] = {sid: key for sid, key in keys.items() if key is not None}
    return view


def status(ctx: StoreContext) -> dict[str, Any]:
    view = directory(ctx)
    counts: dict[int, list[int]] = {sid: [0, 0] for sid in ctx.book.addrs}
    for desc, leader in view["regions"]:
        for store_id, _peer, _role in desc[4]:
            counts.setdefault(store_id, [0, 0])[0] += 1
        if leader is not None:
            counts.setdefault(leader, [0, 0])[1] += 1
    book = ctx.book
    live, down = set(book.live(ctx.now)), book.down(ctx.now)
    stats = {**book.stats, ctx.store_id: own_stats(ctx)}
    stores = [
        {
            "id": sid,
            "addr": book.addrs.get(sid, ""),
            "regions": c[0],
            "leaders": c[1],
            "up": sid in live,
            "state": book.state(sid, live, down),
            "quiet": stats.get(sid, {}).get("quiet"),
            "capacity": stats.get(sid, {}).get("capacity"),
            "available": stats.get(sid, {}).get("available"),
            "requests": stats.get(sid, {}).get("requests"),
        }
        for sid, c in sorted(counts.items())
    ]
    return {
        "store_id": ctx.store_id,
        "addr": ctx.config.addr,
        "stores": stores,
        "regions": view["regions"],
    }
