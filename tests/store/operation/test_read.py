"""Reads: checks on accept, one ReadIndex per turn, served once applied."""

from __future__ import annotations

import pytest

from multiraft.errors import EpochNotMatch, InvalidRequest, KeyNotInRegion, NotLeader
from multiraft.raft import ReadState
from multiraft.storage import kv
from multiraft.store.commands import ReadOp
from multiraft.store.operation import read
from multiraft.store.outbox import Handle
from tests.store.operation.conftest import Harness
from tests.store.operation.test_write import put


def args(**kw: object) -> dict:
    return {"region": 1, "epoch": [1, 1], **kw}


def test_a_follower_refuses_reads_with_its_leader_hint(h: Harness) -> None:
    with pytest.raises(NotLeader) as refused:
        read.accept(h.ctx, "get", args(key=b"k"), Handle(b"c", 1))
    assert refused.value.detail["region"] == h.peer.region_wire()


@pytest.mark.parametrize(
    ("op", "bad", "error"),
    [
        ("get", args(key=b"z"), KeyNotInRegion),
        ("get", args(key=b"k", epoch=[2, 1]), EpochNotMatch),
        ("scan", args(start=b"c", end=b"d", limit=0), InvalidRequest),
        ("get", args(key="k"), InvalidRequest),
    ],
)
def test_bad_reads_are_refused_before_anything_waits(
    h: Harness, op: str, bad: dict, error: type[Exception]
) -> None:
    with pytest.raises(error):
        read.accept(h.ctx, op, bad, Handle(b"c", 1))
    assert not h.peer.reads


def test_reads_of_a_turn_share_one_read_index_and_wait_for_the_apply(h: Harness) -> None:
    h.apply(h.entry(put(b"k", b"v")))
    h.peer.reads = [(ReadOp("get", b"k", version=1), Handle(b"c", i)) for i in (1, 2)]
    read.propose(h.ctx, h.peer)  # not a leader (no lease): a ReadIndex
    [(ctx, (_, _, waiting))] = h.peer.read_waits.items()
    assert len(waiting) == 2 and not h.peer.reads
    applied = h.peer.storage.apply_state.applied_index
    read.on_read_states(h.peer, [ReadState(applied + 1, ctx)])
    read.serve(h.ctx, h.peer)
    assert h.ctx.outbox.take_answers() == [], "the read index is not applied yet"
    h.apply(h.entry(put(b"j", b"w", seq=2)))
    read.serve(h.ctx, h.peer)
    assert [(hd.request_id, r) for hd, r in h.ctx.outbox.take_answers()] == [(1, b"v"), (2, b"v")]


def test_a_scan_stops_at_the_region_end_and_keeps_its_limit(h: Harness) -> None:
    h.apply(h.entry(put(b"c", b"1", seq=1), put(b"d", b"2", seq=2), put(b"e", b"3", seq=3)))
    batch = h.engine.batch()
    kv.put(batch, b"y", b"another region's")  # past this region's end, b"x"
    batch.commit()
    assert read.execute(h.ctx, h.peer, ReadOp("scan", b"c", b"", 2, version=1)) == [
        [b"c", b"1"],
        [b"d", b"2"],
    ]
    rows = read.execute(h.ctx, h.peer, ReadOp("scan", b"d", b"", 10, version=1))
    assert rows == [[b"d", b"2"], [b"e", b"3"]]


def test_reads_waiting_for_a_quorum_are_refused_when_leadership_is_lost(h: Harness) -> None:
    h.peer.read_waits[b"x"] = (1, 0.0, [(ReadOp("get", b"k"), Handle(b"c", 7))])
    read.on_leadership_lost(h.ctx, h.peer)
    [(handle, result)] = h.ctx.outbox.take_answers()
    assert handle.request_id == 7 and isinstance(result, NotLeader)
    assert not h.peer.read_waits
