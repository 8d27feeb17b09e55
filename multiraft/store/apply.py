"""Committed entries -> data, sessions and applied index, all in the turn's
one WriteBatch, so a restart never applies an entry twice or skips one.

Writes of the same batch must see each other (two CAS on one key in one
turn), so applied values are kept in `overlay` until the batch commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import msgpack

from ..protocol.region import VOTER, Epoch, PeerMeta, Region
from ..raft import ConfChange, ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMetadata
from ..storage import keys, kv
from ..storage.engine import Engine, WriteBatch
from ..storage.peer_storage import PeerStorage
from ..storage.states import RegionState
from .commands import CAS, DELETE, PUT, SPLIT, SplitCommand, WriteCommand, decode_entry, err, ok
from .membership import ChangeRefused, changed_region
from .peer import Handle, Peer
from .session import SessionTable
from .split_check import RegionSize

log = logging.getLogger(__name__)

Reply = Callable[[Handle, Any], None]

BOOTSTRAP_INDEX = 5
"""Initial log position of a new region (bootstrap or split)."""


def load_sessions(engine: Engine, region_id: int) -> SessionTable:
    from .session import Session

    prefix = keys.session_prefix(region_id)
    sessions = {}
    with engine.read() as txn:
        cur = txn.cursor()
        if cur.set_range(prefix):
            for k, v in cur:
                if not k.startswith(prefix):
                    break
                sessions[int.from_bytes(k[len(prefix) :], "big")] = Session.decode(v)
    return SessionTable(sessions)


class Applier:
    """Applies the committed entries of every region in one turn."""

    def __init__(self, engine: Engine, batch: WriteBatch, reply: Reply) -> None:
        self.engine = engine
        self.batch = batch
        self.reply = reply
        self.overlay: dict[bytes, bytes | None] = {}
        self.splits: list[tuple[Peer, Region, PeerStorage, SessionTable]] = []
        """Regions created by splits in this batch; the store starts their
        peers once the batch has committed."""
        self.changed: list[Peer] = []
        """Peers whose membership changed in this batch."""
        self.removed: list[Peer] = []
        """Peers whose own replica was removed: the store drops them once
        the batch (which already deleted their state) has committed."""

    def apply(self, peer: Peer, entries: list[Entry]) -> None:
        for e in entries:
            if e.type == EntryType.CONF_CHANGE:
                result = self._apply_conf_change(peer, e)
                for h in peer.take_proposal(e.index, e.term, self.reply) or []:
                    self.reply(h, result)
                if peer in self.removed:
                    # The replica is gone with everything it kept: nothing
                    # later in its log concerns this store.
                    return
                continue
            results = self._apply_normal(peer, e) if e.data else []
            handles = peer.take_proposal(e.index, e.term, self.reply)
            if handles and len(results) != len(handles):
                # Never expected: the entry is not the one we proposed. What
                # happened is unknown, so no answer: the clients retry.
                log.error(
                    "region %d: entry %d does not match its proposal", peer.region.id, e.index
                )
            elif handles:
                for h, res in zip(handles, results, strict=True):
                    self.reply(h, res)
        if entries:
            peer.storage.set_applied(self.batch, entries[-1].index)
            self._write_sessions(peer)

    def _apply_conf_change(self, peer: Peer, e: Entry) -> Any:
        """A membership change: the descriptor gets the new replica set and
        conf_ver, and Raft the new configuration, in this batch. A change
        that no longer fits is refused the same way on every replica."""
        region = peer.region
        try:
            cc = ConfChange.decode(e.data)
            new = changed_region(region, cc)
        except (ChangeRefused, ValueError, TypeError) as exc:
            log.warning("region %d: conf change at %d refused: %s", region.id, e.index, exc)
            return err("EpochNotMatch", str(exc), {"regions": [region.to_wire()]})
        cs = peer.raw_node.apply_conf_change(cc)
        peer.region = new
        self.changed.append(peer)
        log.info("region %d: %s of peer %d applied", region.id, cc.type.name, cc.node_id)
        if new.peer_by_id(peer.peer_id) is None:
            destroy_region(self.batch, peer.storage, new.epoch.conf_ver, peer.peer_id)
            self.removed.append(peer)
        else:
            peer.storage.set_region(self.batch, region_state(new, cs))
        return ok(new.to_wire())

    def _apply_normal(self, peer: Peer, e: Entry) -> list:
        try:
            kind, payload = decode_entry(e.data)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            # Only our own leaders write entries: this is corruption, not input.
            log.error("region %d: undecodable entry %d: %s", peer.region.id, e.index, exc)
            return []
        if kind == SPLIT:
            return [self._apply_split(peer, payload)]
        return [self._apply_write(peer, e.index, c) for c in payload]

    def _apply_split(self, peer: Peer, cmd: SplitCommand) -> Any:
        """Shrink the region to [start, split_key) and create the region
        [split_key, end) on the same stores, in this batch; no data moves."""
        region = peer.region
        if cmd.epoch_version != region.epoch.version:
            return err(
                "EpochNotMatch",
                f"region {region.id} changed before the split applied",
                {"regions": [region.to_wire()]},
            )
        if cmd.split_key == region.start or not region.contains(cmd.split_key):
            return err(
                "KeyNotInRegion",
                f"split key not inside region {region.id}",
                {"region": region.to_wire()},
            )
        if len(cmd.new_peer_ids) != len(region.peers):
            # The membership changed after the split was proposed: the
            # client (or the split checker) proposes again with new ids.
            return err(
                "EpochNotMatch",
                f"region {region.id} membership changed before the split applied",
                {"regions": [region.to_wire()]},
            )
        epoch = Epoch(region.epoch.version + 1, region.epoch.conf_ver)
        left = replace(region, end=cmd.split_key, epoch=epoch)
        peers = tuple(
            PeerMeta(p.store_id, new_id, p.role)
            for p, new_id in zip(region.peers, cmd.new_peer_ids, strict=True)
        )
        right = Region(cmd.new_region_id, cmd.split_key, region.end, epoch, peers)
        peer.region = left  # later commands of this batch see the new range
        peer.size = RegionSize()
        # Raft's configuration, not storage's: a membership change applied
        # earlier in this batch is not committed to storage yet.
        conf_state = peer.raw_node.status().conf_state
        peer.storage.set_region(self.batch, region_state(left, conf_state))
        storage = PeerStorage(self.engine, right.id)
        bootstrap_region(self.batch, storage, right)
        sessions = peer.sessions.copy()
        self._write_session_table(right.id, sessions, list(sessions.sessions))
        self.splits.append((peer, right, storage, sessions))
        log.info("region %d split at %r: new region %d", region.id, cmd.split_key, right.id)
        return ok([left.to_wire(), right.to_wire()])

    def _apply_write(self, peer: Peer, index: int, c: WriteCommand) -> Any:
        sessions = peer.sessions
        done = sessions.lookup(c.client, c.seq, c.acked, index)
        if done is not None:
            return done
        region = peer.region
        if not region.contains(c.key):
            # The region split after the command was proposed: nothing was
            # applied, so the client retries in the right region.
            return err(
                "KeyNotInRegion", f"key not in region {region.id}", {"region": region.to_wire()}
            )
        result = self._execute(c)
        sessions.record(c.client, c.seq, c.acked, index, result)
        if c.op == PUT:
            peer.size.grow(c.key, c.a)
        elif c.op == DELETE:
            peer.size.grow(c.key, None)
        elif result == ok(True):  # a CAS that swapped
            peer.size.grow(c.key, c.b)
        return result

    def _execute(self, c: WriteCommand) -> Any:
        if c.op == PUT:
            self._put(c.key, c.a)
            return ok()
        if c.op == DELETE:
            self._put(c.key, None)
            return ok()
        if c.op == CAS:
            if self._get(c.key) != c.a:
                return ok(False)
            self._put(c.key, c.b)
            return ok(True)
        return err("InvalidRequest", f"unknown write op {c.op}")

    def _get(self, key: bytes) -> bytes | None:
        if key in self.overlay:
            return self.overlay[key]
        return kv.get(self.engine, key)

    def _put(self, key: bytes, value: bytes | None) -> None:
        self.overlay[key] = value
        if value is None:
            kv.delete(self.batch, key)
        else:
            kv.put(self.batch, key, value)

    def _write_sessions(self, peer: Peer) -> None:
        writes, deletes = peer.sessions.take_changes()
        prefix = keys.session_prefix(peer.region.id)
        for client, value in writes.items():
            self.batch.put(prefix + keys.pack_u64(client), value)
        for client in deletes:
            self.batch.delete(prefix + keys.pack_u64(client))

    def _write_session_table(self, region_id: int, table: SessionTable, clients: list[int]) -> None:
        prefix = keys.session_prefix(region_id)
        for client in clients:
            self.batch.put(prefix + keys.pack_u64(client), table.sessions[client].encode())


def region_state(region: Region, cs: ConfState) -> RegionState:
    """What storage keeps of a region: its descriptor, range and membership."""
    return RegionState(msgpack.packb(region.to_wire()), region.start, region.end, cs)


def destroy_region(batch: WriteBatch, storage: PeerStorage, conf_ver: int, peer_id: int) -> None:
    """Delete a removed replica's log, states and sessions, and leave a
    tombstone (the conf_ver it knew last, its peer id), so late messages of
    the old membership cannot bring it back; a later membership that names
    this store again (with a new peer id) can. Its data, which no region
    here owns any more, is cleared after the batch in bounded transactions
    (`kv.RangeClear`); if a crash comes first, whatever later takes the
    range here does so by snapshot, which clears it."""
    rid = storage.region_id
    batch.delete_range(keys.region_prefix(rid), keys.region_prefix(rid + 1))
    batch.put(keys.tombstone_key(rid), msgpack.packb([conf_ver, peer_id]))


def is_tombstoned(engine: Engine, region: Region, peer_id: int) -> bool:
    """Whether `peer_id` of `region` (as a message describes it) is a replica
    this store already removed."""
    value = engine.get(keys.tombstone_key(region.id))
    if value is None:
        return False
    conf_ver, dead_peer = msgpack.unpackb(value)
    return peer_id == dead_peer or region.epoch.conf_ver <= conf_ver


def bootstrap_region(batch: WriteBatch, storage: PeerStorage, region: Region) -> None:
    """A region's first state, identical on every replica: a log that starts
    after BOOTSTRAP_INDEX, so replicas added later catch up by snapshot."""
    cs = ConfState(
        tuple(p.peer_id for p in region.peers if p.role == VOTER),
        tuple(p.peer_id for p in region.peers if p.role != VOTER),
    )
    meta = SnapshotMetadata(cs, BOOTSTRAP_INDEX, BOOTSTRAP_INDEX)
    storage.apply_snapshot(batch, Snapshot(b"", meta), region_state(region, cs))
    storage.set_hard_state(batch, HardState(BOOTSTRAP_INDEX, 0, BOOTSTRAP_INDEX))
