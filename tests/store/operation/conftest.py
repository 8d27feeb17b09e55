"""One region with one replica on store 1, over a real LMDB engine, and
its committed entries applied by hand: the apply side of each capability
without a loop, sockets or a clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multiraft.protocol.region import Epoch, PeerMeta, Region
from multiraft.raft import ConfChangeType, Entry, EntryType
from multiraft.storage.engine import Engine
from multiraft.storage.peer_storage import PeerStorage
from multiraft.store.commands import WriteCommand, decode_entry, encode_writes
from multiraft.store.config import StoreConfig
from multiraft.store.context import StoreContext
from multiraft.store.meta import StoreMeta
from multiraft.store.operation import peer_life
from multiraft.store.operation.batch import TurnBatch
from multiraft.store.operation.conf_change import conf_change
from multiraft.store.operation.ready import apply_entries
from multiraft.store.outbox import Handle, Outbox
from multiraft.store.region_state import BOOTSTRAP_INDEX, bootstrap_region
from multiraft.store.session import SessionTable
from multiraft.store.stores import StoreBook

TERM = BOOTSTRAP_INDEX + 1
REGION = Region(1, b"b", b"x", Epoch(1, 1), (PeerMeta(1, 1),))


def context(engine: Engine, path: Path, store_id: int = 1) -> StoreContext:
    """A StoreContext over `engine` for a store alone in its cluster."""
    meta = StoreMeta(store_id, 7, {store_id: "127.0.0.1:1"})
    book = StoreBook(meta, engine, live_window=3.0, down_after=60.0, now=0.0)
    config = StoreConfig(store_id, "127.0.0.1:1", str(path), sync=False)
    return StoreContext(config, engine, meta, book, Outbox(meta.cluster_id, store_id))


class Harness:
    def __init__(self, path: Path, region: Region = REGION) -> None:
        self.path = path
        self.engine = Engine(path, sync=False, map_size=1 << 22)
        storage = PeerStorage(self.engine, region.id)
        batch = self.engine.batch()
        bootstrap_region(batch, storage, region)
        batch.commit()
        self.ctx = context(self.engine, path)
        self.peer = peer_life.create(self.ctx, region, storage, SessionTable())
        self.answers: list[tuple[Handle, Any]] = []
        self.next_index = BOOTSTRAP_INDEX + 1

    def entry(self, *cmds: WriteCommand, term: int = TERM) -> Entry:
        return self.raw_entry(encode_writes(list(cmds)), term=term)

    def raw_entry(self, data: bytes, term: int = TERM) -> Entry:
        e = Entry(term, self.next_index, EntryType.NORMAL, data)
        self.next_index += 1
        return e

    def conf_entry(self, kind: ConfChangeType, peer_id: int, store_id: int, conf_ver: int) -> Entry:
        cc = conf_change(kind, peer_id, store_id, conf_ver)
        e = Entry(TERM, self.next_index, EntryType.CONF_CHANGE, cc.encode())
        self.next_index += 1
        self.peer.proposals.append((e.index, TERM, [Handle(b"m", e.index)]))
        return e

    def batch(self) -> TurnBatch:
        return TurnBatch.open(self.engine, self.ctx.applied)

    def apply_into(self, tb: TurnBatch, *entries: Entry) -> None:
        apply_entries(self.ctx, tb, self.peer, list(entries))
        self.answers.extend(self.ctx.outbox.take_answers())

    def apply(self, *entries: Entry, propose: bool = True) -> dict[int, Any]:
        """Apply `entries` in one batch and commit it; with `propose`, each
        entry has a matching proposal and the results come back by request id."""
        first = len(self.answers)
        if propose:
            for e in entries:
                n = len(decode_entry(e.data)[1]) if e.data else 0
                handles = [Handle(b"c", e.index * 100 + i) for i in range(n)]
                self.peer.proposals.append((e.index, e.term, handles))
        tb = self.batch()
        self.apply_into(tb, *entries)
        self.ctx.applied.flush(tb.batch)  # as a turn whose flush is due
        tb.batch.commit()
        return {h.request_id: r for h, r in self.answers[first:]}

    def results(self, e: Entry, answers: dict[int, Any]) -> list[Any]:
        n = len(decode_entry(e.data)[1]) if e.data else 0
        return [answers[e.index * 100 + i] for i in range(n)]

    def by_id(self) -> dict[int, Any]:
        return {h.request_id: r for h, r in self.answers}


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "store")
    try:
        yield harness
    finally:
        harness.engine.close()
