"""A replica's own bookkeeping: who leads, where its peers live, and the
proposals waiting on entries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from multiraft.protocol.region import Epoch, PeerMeta, Region
from multiraft.storage.engine import Engine
from multiraft.storage.peer_storage import PeerStorage
from multiraft.store.config import RaftSettings
from multiraft.store.lease import Lease
from multiraft.store.outbox import Handle
from multiraft.store.peer import Peer
from multiraft.store.region_state import bootstrap_region
from multiraft.store.session import SessionTable

REGION = Region(1, b"", b"", Epoch(1, 1), (PeerMeta(1, 10), PeerMeta(2, 20), PeerMeta(3, 30)))


@pytest.fixture
def p(tmp_path: Path) -> Iterator[Peer]:
    engine = Engine(tmp_path, sync=False, map_size=1 << 22)
    storage = PeerStorage(engine, REGION.id)
    batch = engine.batch()
    bootstrap_region(batch, storage, REGION)
    batch.commit()
    try:
        yield Peer(1, REGION, storage, SessionTable(), RaftSettings(), Lease(0.76))
    finally:
        engine.close()


def test_a_lagging_replica_can_answer_peers_it_has_not_heard_of_yet(p: Peer) -> None:
    assert p.store_of_peer(20) == 2 and p.store_of_peer(40) is None
    p.heard(40, 4)  # a peer added while this replica was cut off asks for its vote
    p.heard(20, 9)  # a known peer's store comes from the descriptor, not the message
    assert p.store_of_peer(40) == 4 and p.store_of_peer(20) == 2


def test_proposals_are_matched_by_index_and_term(p: Peer) -> None:
    a, b, c = Handle(b"x", 1), Handle(b"x", 2), Handle(b"x", 3)
    p.proposals.extend([(6, 2, [a]), (7, 2, [b]), (8, 2, [c])])
    assert p.take_proposal(6, 2) == ([a], [])
    # entry 7 came from a newer leader: ours at 7 lost, and 8 (term 2) can never commit
    assert p.take_proposal(7, 3) == (None, [b, c])
    assert not p.proposals


def test_a_replica_going_away_hands_back_everything_waiting(p: Peer) -> None:
    handles = [Handle(b"x", i) for i in range(3)]
    p.proposals.append((6, 2, [handles[0]]))
    p.read_waits[b"ctx"] = (1, 0.0, [(None, handles[1])])  # type: ignore[list-item]
    p.ready_reads.append((5, [(None, handles[2])]))  # type: ignore[list-item]
    assert p.take_waiting() == handles
    assert not (p.proposals or p.read_waits or p.ready_reads)
