"""Replicas coming and going: created from a message only where nothing
overlaps and no tombstone forbids it; dropped with everything waiting on
them answered."""

from __future__ import annotations

from dataclasses import replace

from multiraft.errors import RegionNotFound
from multiraft.protocol.region import Epoch, PeerMeta, Region
from multiraft.raft import Message, MessageType
from multiraft.storage import kv
from multiraft.storage.peer_storage import PeerStorage
from multiraft.store.operation import peer_life
from multiraft.store.outbox import Handle
from multiraft.store.region_state import destroy_region
from multiraft.transport import codec
from tests.store.operation.conftest import Harness
from tests.store.operation.test_write import put

ELSEWHERE = Region(9, b"x", b"", Epoch(2, 3), (PeerMeta(1, 91), PeerMeta(2, 92)))
"""A region beyond the harness region's end [b, x), led by store 2."""


def item(region: Region, to: int) -> codec.RaftItem:
    m = Message(MessageType.APP, to=to, frm=92, term=7)
    return codec.RaftItem(
        region.id, (region.epoch.version, region.epoch.conf_ver), m, region.to_wire()
    )


def test_a_message_for_a_new_region_starts_an_empty_replica(h: Harness) -> None:
    peer = peer_life.create_from_message(h.ctx, item(ELSEWHERE, 91))
    assert peer is not None and h.ctx.peers[9] is peer and peer.peer_id == 91
    assert peer.storage.apply_state.applied_index == 0  # filled by the leader's snapshot
    assert h.ctx.router.get(9) == ELSEWHERE


def test_no_replica_from_a_message_that_overlaps_one_or_names_another_peer(h: Harness) -> None:
    overlapping = replace(ELSEWHERE, start=b"m")  # this store has not applied the split yet
    assert peer_life.create_from_message(h.ctx, item(overlapping, 91)) is None
    assert peer_life.create_from_message(h.ctx, item(ELSEWHERE, 77)) is None
    assert set(h.ctx.peers) == {1}


def test_a_tombstone_keeps_a_removed_replica_from_coming_back(h: Harness) -> None:
    batch = h.engine.batch()
    destroy_region(batch, PeerStorage(h.engine, 9), 3, 91)
    batch.commit()
    assert peer_life.create_from_message(h.ctx, item(ELSEWHERE, 91)) is None
    readded = replace(ELSEWHERE, epoch=Epoch(2, 5), peers=(PeerMeta(1, 95), PeerMeta(2, 92)))
    assert peer_life.create_from_message(h.ctx, item(readded, 95)) is not None


def test_a_dropped_replica_answers_its_waiting_requests_and_clears_its_data(h: Harness) -> None:
    h.apply(h.entry(put(b"k", b"v")))
    h.peer.proposals.append((99, 9, [Handle(b"c", 1)]))
    peer_life.drop(h.ctx, h.peer)
    [(handle, result)] = h.ctx.outbox.take_answers()
    assert handle.request_id == 1 and isinstance(result, RegionNotFound)
    assert 1 not in h.ctx.peers and h.ctx.router.get(1) == h.peer.region
    assert kv.get(h.engine, b"k") == b"v"  # cleared over the next turns
    while h.ctx.clears:
        peer_life.clear_some(h.ctx)
    assert kv.get(h.engine, b"k") is None
