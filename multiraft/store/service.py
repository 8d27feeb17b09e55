"""The KV service: a client request -> the capability that handles it.

Data requests name a region and the epoch their sender saw; the checks
(`checks`) refuse them with what the client needs to retry: RegionNotFound,
EpochNotMatch (current descriptors), KeyNotInRegion (descriptor), NotLeader
(leader hint). Writes and reads that pass wait in their peer's queues until
the turn proposes them all at once. A refusal is raised as one of
`multiraft.errors` and answered here; so is a malformed request
(InvalidRequest), which is also logged, and a request the sender's role may
not make (PermissionDenied).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..errors import InvalidRequest, MultiraftError, PermissionDenied, ServerBusy
from ..logs import Throttled
from ..protocol.limits import check_store_addr
from ..protocol.wire import Request
from ..security.trust import PLAIN, Principal, TrustTable
from . import gossip
from .checks import check_leader, find_peer
from .context import StoreContext
from .meta import save_trust
from .operation import conf_change, quiesce, read, split, write
from .outbox import Handle
from .replicas import ReplicaScheduler

log = logging.getLogger(__name__)
refused = Throttled(log)

MAX_HELD_REQUESTS = 20_000
"""Client requests a store holds at once (queued, proposed, waiting to be
read); more are refused with ServerBusy, so a flood cannot grow its memory
without bound (the clients back off and retry)."""
ADMIN_OPS = frozenset({"regions", "status", "join", "trust_add", "trust_remove", "trust_list"})
"""Requests served however busy the store is: cheap, and how operators see in."""

Handler = Callable[[Request, Handle], None]


class Service:
    def __init__(self, ctx: StoreContext, replicas: ReplicaScheduler) -> None:
        self.ctx = ctx
        self.replicas = replicas
        self._handlers: dict[str, Handler] = {
            "get": self._read,
            "scan": self._read,
            "put": self._write,
            "delete": self._write,
            "cas": self._write,
            "split": self._split,
            "change_peer": self._change_peer,
            "transfer_leader": self._transfer_leader,
            "regions": self._regions,
            "status": self._status,
            "join": self._join,
            "trust_add": self._trust_add,
            "trust_remove": self._trust_remove,
            "trust_list": self._trust_list,
        }

    def handle(self, req: Request, handle: Handle, sender: Principal = PLAIN) -> None:
        handler = self._handlers.get(req.op)
        try:
            if handler is None:
                raise InvalidRequest(f"unknown request op {req.op!r}")
            if not sender.may(req.op):
                refused(logging.WARNING, sender.name, "refused %s from %s", req.op, sender.name)
                raise PermissionDenied(f"role {sender.role} may not {req.op} (key {sender.name})")
            if req.op == "join" and sender.store_id not in (None, req.args.get("store_id")):
                raise PermissionDenied(f"the key of store {sender.store_id} cannot join as another")
            if Handle.held > MAX_HELD_REQUESTS and req.op not in ADMIN_OPS:
                refused(logging.WARNING, "held", "refusing requests: %d held", Handle.held)
                raise ServerBusy(f"this store holds {Handle.held} requests; retry later")
            handler(req, handle)
        except (InvalidRequest, TypeError, ValueError, KeyError) as e:
            log.info("bad %s request: %s", req.op, e)
            self.ctx.outbox.reply(handle, InvalidRequest(f"bad {req.op} request: {e}"))
        except MultiraftError as e:
            self.ctx.outbox.reply(handle, e)

    def _write(self, req: Request, handle: Handle) -> None:
        write.accept(self.ctx, req.op, req.args, handle)

    def _read(self, req: Request, handle: Handle) -> None:
        read.accept(self.ctx, req.op, req.args, handle)

    def _split(self, req: Request, handle: Handle) -> None:
        split.accept(self.ctx, req.args, handle)

    def _change_peer(self, req: Request, handle: Handle) -> None:
        conf_change.accept(self.ctx, req.args, handle, self.replicas.start_move)

    def _transfer_leader(self, req: Request, handle: Handle) -> None:
        region_id, target = req.args["region"], req.args["store"]
        peer = find_peer(self.ctx.peers, region_id)
        meta = peer.region.peer_on(target)
        if meta is None:
            raise InvalidRequest(f"store {target} holds no replica of region {region_id}")
        check_leader(peer)
        peer.transfer_leader(meta.peer_id)
        quiesce.wake(self.ctx, peer)
        self.ctx.outbox.reply(handle, None)

    # -- cluster view ------------------------------------------------------

    def _regions(self, req: Request, handle: Handle) -> None:
        self._check_directory()
        self.ctx.outbox.reply(handle, gossip.directory(self.ctx))

    # -- trust (secure stores) ---------------------------------------------

    def _trust_add(self, req: Request, handle: Handle) -> None:
        trust = self._trust()
        a = req.args
        key, role, name, store_id = a["key"], a["role"], a["name"], a.get("store_id")
        if not (isinstance(key, str) and len(key) == 40):
            raise InvalidRequest("key must be a z85 public key (40 characters)")
        trust.add(key, role, name, store_id)
        save_trust(self.ctx.engine, trust)
        self.ctx.outbox.reply(handle, None)

    def _trust_remove(self, req: Request, handle: Handle) -> None:
        trust = self._trust()
        removed = trust.remove(req.args["key"])
        if removed:
            save_trust(self.ctx.engine, trust)
        self.ctx.outbox.reply(handle, removed)

    def _trust_list(self, req: Request, handle: Handle) -> None:
        self.ctx.outbox.reply(handle, self._trust().listing())

    def _trust(self) -> TrustTable:
        if self.ctx.trust is None:
            raise InvalidRequest("this store runs in plain mode: it has no trust table")
        return self.ctx.trust

    def _status(self, req: Request, handle: Handle) -> None:
        self._check_directory()
        self.ctx.outbox.reply(handle, gossip.status(self.ctx))

    def _check_directory(self) -> None:
        """A store that just started knows only its own regions until the
        others' gossip arrives: it sends the client to another store."""
        if not gossip.directory_ready(self.ctx):
            raise ServerBusy("this store has not heard the cluster's gossip yet")

    def _join(self, req: Request, handle: Handle) -> None:
        """A new store asks to join: add it to the store list (gossip spreads
        it) and tell it the cluster's id and stores. Asking twice is fine."""
        store_id, addr = req.args["store_id"], check_store_addr(req.args["addr"])
        if type(store_id) is not int or not 0 < store_id < 1 << 31:
            raise InvalidRequest("store_id must be a positive int")
        book = self.ctx.book
        stores = book.addrs
        if stores.get(store_id, addr) != addr:
            raise InvalidRequest(f"store id {store_id} is taken by {stores[store_id]}")
        taken = [sid for sid, a in stores.items() if a == addr and sid != store_id]
        if taken:
            raise InvalidRequest(f"{addr} is the address of store {taken[0]}")
        if store_id in stores and book.has_been_running(store_id, self.ctx.router.regions()):
            # A store that ran before and asks again lost its data dir: as an
            # empty replica it could vote away entries it had acknowledged.
            raise InvalidRequest(
                f"store {store_id} already ran in this cluster; a store with a new "
                "data dir joins with a new store id"
            )
        if store_id not in stores:
            book.add(store_id, addr, self.ctx.now)
        self.ctx.outbox.reply(handle, {"cluster_id": self.ctx.cluster_id, "stores": dict(stores)})
