"""The KV service: a client request -> checks -> a queued write or read.

Every data request names a region and the epoch its sender saw. The checks,
in order, and what a refused client gets to retry with:
unknown region -> RegionNotFound; stale epoch -> EpochNotMatch (current
descriptor); key outside the range -> KeyNotInRegion (descriptor); this
store does not lead -> NotLeader (leader hint). Writes and reads that pass
wait in their peer's queues until the loop proposes them all at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequest
from ..protocol.limits import (
    MAX_SCAN_LIMIT,
    check_key,
    check_optional_value,
    check_store_addr,
    check_value,
)
from ..protocol.peer_change import ADD, CHANGES
from ..protocol.region import Epoch
from ..protocol.wire import Request
from .commands import OPS, WriteCommand, err, ok
from .membership import Done, TransferFirst, Wait
from .peer import Handle, Peer, ReadOp

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)

MAX_PENDING_PROPOSALS = 1024
"""Entries a region may have proposed but not applied before writes are refused
with ServerBusy (each entry carries a whole turn's writes)."""

Reply = Callable[[Handle, Any], None]


class Service:
    def __init__(self, store: Store, reply: Reply) -> None:
        self.store = store
        self.reply = reply
        self._handlers: dict[str, Callable[[Request, Handle], None]] = {
            "get": self._read,
            "scan": self._read,
            "put": self._write,
            "delete": self._write,
            "cas": self._write,
            "regions": self._regions,
            "status": self._status,
            "transfer_leader": self._transfer_leader,
            "split": self._split,
            "change_peer": self._change_peer,
            "join": self._join,
        }

    def handle(self, req: Request, handle: Handle) -> None:
        handler = self._handlers.get(req.op)
        if handler is None:
            self.reply(handle, err("InvalidRequest", f"unknown request op {req.op!r}"))
            return
        try:
            handler(req, handle)
        except (InvalidRequest, TypeError, ValueError, KeyError) as e:
            log.info("bad %s request: %s", req.op, e)
            self.reply(handle, err("InvalidRequest", f"bad {req.op} request: {e}"))

    # -- data ------------------------------------------------------------

    def _peer_for(self, args: dict, key: bytes, handle: Handle) -> Peer | None:
        """The leader peer that may serve `key`, or None after replying why not."""
        region_id = args["region"]
        epoch = Epoch.from_wire(args["epoch"])
        peer = self.store.peers.get(region_id)
        if peer is None:
            self.reply(handle, err("RegionNotFound", f"region {region_id} is not on this store"))
            return None
        region = peer.region
        if epoch.version != region.epoch.version:
            self.reply(
                handle,
                err(
                    "EpochNotMatch",
                    f"region {region_id} epoch changed",
                    {"regions": self.store.regions_around(region, key)},
                ),
            )
            return None
        if not region.contains(key):
            self.reply(
                handle,
                err(
                    "KeyNotInRegion", f"key not in region {region_id}", {"region": region.to_wire()}
                ),
            )
            return None
        if not peer.is_leader():
            self.reply(handle, not_leader(self.store.store_id, peer))
            return None
        return peer

    def _write(self, req: Request, handle: Handle) -> None:
        a = req.args
        key = check_key(a["key"])
        if req.op == "put":
            first, second = check_value(a["value"]), None
        elif req.op == "cas":
            first = check_optional_value(a["expected"], "expected")
            second = check_optional_value(a["new"], "new")
        else:
            first = second = None
        ids = [a["client"], a["seq"], a["acked"]]
        if not all(type(i) is int and i >= 0 for i in ids):
            raise InvalidRequest("client, seq and acked must be non-negative ints")
        peer = self._peer_for(a, key, handle)
        if peer is None:
            return
        if len(peer.proposals) >= MAX_PENDING_PROPOSALS:
            self.reply(
                handle,
                err(
                    "ServerBusy",
                    f"region {peer.region.id} has {len(peer.proposals)} proposals in flight",
                ),
            )
            return
        cmd = WriteCommand(OPS[req.op], *ids, peer.region.epoch.version, key, first, second)
        peer.writes.append((cmd, handle))
        self.store.touch(peer)

    def _read(self, req: Request, handle: Handle) -> None:
        a = req.args
        if req.op == "get":
            op = ReadOp("get", check_key(a["key"]))
        else:
            limit = a.get("limit")
            if limit is None:
                limit = MAX_SCAN_LIMIT
            elif type(limit) is not int or limit <= 0:
                raise InvalidRequest("scan limit must be a positive int")
            op = ReadOp(
                "scan",
                check_key(a["start"], "start"),
                check_key(a["end"], "end"),
                min(limit, MAX_SCAN_LIMIT),
            )
        peer = self._peer_for(a, op.key, handle)
        if peer is not None:
            op.version = peer.region.epoch.version
            peer.reads.append((op, handle))
            self.store.touch(peer)

    # -- cluster view ------------------------------------------------------

    def _regions(self, req: Request, handle: Handle) -> None:
        if self._directory_ready(handle):
            self.reply(handle, ok(self.store.directory()))

    def _status(self, req: Request, handle: Handle) -> None:
        if self._directory_ready(handle):
            self.reply(handle, ok(self.store.status()))

    def _directory_ready(self, handle: Handle) -> bool:
        """A store that just started knows only its own regions until the
        others' gossip arrives: it sends the client to another store."""
        if self.store.directory_ready():
            return True
        self.reply(handle, err("ServerBusy", "this store has not heard the cluster's gossip yet"))
        return False

    def _transfer_leader(self, req: Request, handle: Handle) -> None:
        region_id, target = req.args["region"], req.args["store"]
        peer = self.store.peers.get(region_id)
        if peer is None:
            self.reply(handle, err("RegionNotFound", f"region {region_id} is not on this store"))
            return
        meta = peer.region.peer_on(target)
        if meta is None:
            raise InvalidRequest(f"store {target} holds no replica of region {region_id}")
        if not peer.is_leader():
            self.reply(handle, not_leader(self.store.store_id, peer))
            return
        peer.raw_node.transfer_leader(meta.peer_id)
        self.store.touch(peer)
        self.reply(handle, ok())

    def _split(self, req: Request, handle: Handle) -> None:
        key = check_key(req.args["key"])
        peer = self._peer_for(req.args, key, handle)
        if peer is None:
            return
        region = peer.region
        if key == region.start:
            # Already a boundary (a split raced this one): send the client the
            # current descriptors so it sees the boundary itself.
            self.reply(
                handle,
                err(
                    "EpochNotMatch",
                    f"{key!r} already starts region {region.id}",
                    {"regions": self.store.regions_around(region, key)},
                ),
            )
            return
        self.store.propose_split(peer, key, handle)

    def _change_peer(self, req: Request, handle: Handle) -> None:
        """One step towards a voter on `store` (change "add") or no replica
        there ("remove"); the reply carries the region's descriptor, and the
        client asks again until the goal holds."""
        region_id, store_id, change = req.args["region"], req.args["store"], req.args["change"]
        if type(store_id) is not int or change not in CHANGES:
            raise InvalidRequest('store must be an int and change "add" or "remove"')
        peer = self.store.peers.get(region_id)
        if peer is None:
            self.reply(handle, err("RegionNotFound", f"region {region_id} is not on this store"))
            return
        if not peer.is_leader():
            self.reply(handle, not_leader(self.store.store_id, peer))
            return
        if change == ADD and store_id not in self.store.stores:
            raise InvalidRequest(f"no store {store_id} in the cluster")
        replaces = req.args.get("replaces")
        if replaces is not None and change == ADD:
            if type(replaces) is not int:
                raise InvalidRequest("replaces must be a store id")
            self.store.replicas.start_move(region_id, replaces)
        step = self.store.change_peer(peer, store_id, change, handle)
        if isinstance(step, Done):
            self.reply(handle, ok(peer.region.to_wire()))
        elif isinstance(step, Wait):
            self.reply(handle, err("ServerBusy", step.why))
        elif isinstance(step, TransferFirst):
            detail = {"leader": peer.store_of_peer(step.peer_id), "region": peer.region.to_wire()}
            self.reply(handle, err("NotLeader", "leadership moves before the replica goes", detail))

    def _join(self, req: Request, handle: Handle) -> None:
        """A new store asks to join: add it to the store list (gossip spreads
        it) and tell it the cluster's id and stores. Asking twice is fine."""
        store_id, addr = req.args["store_id"], check_store_addr(req.args["addr"])
        if type(store_id) is not int or not 0 < store_id < 1 << 31:
            raise InvalidRequest("store_id must be a positive int")
        stores = self.store.stores
        if stores.get(store_id, addr) != addr:
            raise InvalidRequest(f"store id {store_id} is taken by {stores[store_id]}")
        taken = [sid for sid, a in stores.items() if a == addr and sid != store_id]
        if taken:
            raise InvalidRequest(f"{addr} is the address of store {taken[0]}")
        if store_id in stores and self.store.book.has_been_running(
            store_id, self.store.router.regions()
        ):
            # A store that ran before and asks again lost its data dir: as an
            # empty replica it could vote away entries it had acknowledged.
            raise InvalidRequest(
                f"store {store_id} already ran in this cluster; a store with a new "
                "data dir joins with a new store id"
            )
        if store_id not in stores:
            self.store.book.add(store_id, addr)
        self.reply(handle, ok({"cluster_id": self.store.cluster_id, "stores": dict(stores)}))


def not_leader(store_id: int, peer: Peer) -> list:
    return err(
        "NotLeader",
        f"store {store_id} does not lead region {peer.region.id}",
        {"leader": peer.leader_store(), "region": peer.region.to_wire()},
    )
