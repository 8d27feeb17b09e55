"""Splits: their apply side (the range shrinks, the new region is created
in the same batch, stale splits are refused)."""

from __future__ import annotations

from multiraft.errors import EpochNotMatch, KeyNotInRegion
from multiraft.protocol.region import Epoch, PeerMeta, Region
from multiraft.raft import ConfChangeType
from multiraft.storage.peer_storage import PeerStorage
from multiraft.store.commands import SplitCommand, SplitPart, encode_split
from multiraft.store.outbox import Handle
from multiraft.store.session import load_sessions
from tests.store.operation.conftest import REGION, TERM, Harness
from tests.store.operation.test_write import put


def test_split_shrinks_the_region_for_later_commands_of_the_batch(h: Harness) -> None:
    h.apply(h.entry(put(b"p", b"1", client=6, seq=1)))
    split = h.raw_entry(encode_split(SplitCommand(1, [SplitPart(b"m", 50, [51])])))
    after = h.entry(put(b"q", b"2", client=6, seq=2), put(b"c", b"3", client=6, seq=3))
    h.peer.proposals.append((split.index, TERM, [Handle(b"s", 1)]))
    h.peer.proposals.append((after.index, TERM, [Handle(b"s", 2), Handle(b"s", 3)]))
    tb = h.batch()
    h.apply_into(tb, split, after)
    tb.batch.commit()
    by_id = h.by_id()
    left, right = (Region.from_wire(w) for w in by_id[1])
    assert (left.start, left.end, left.epoch) == (b"b", b"m", Epoch(2, 1))
    assert (right.id, right.start, right.end, right.peers) == (50, b"m", b"x", (PeerMeta(1, 51),))
    assert h.peer.region == left
    assert isinstance(by_id[2], KeyNotInRegion)
    assert by_id[3] is None
    [new] = tb.new_regions
    assert new.parent is h.peer and new.region == right
    assert new.sessions.lookup(6, 1, 0, 0) is None  # retries may land on the new half
    assert set(load_sessions(h.engine, 50).sessions) == {6}


def test_a_split_proposed_before_a_membership_change_is_refused_as_stale(h: Harness) -> None:
    split = h.raw_entry(encode_split(SplitCommand(1, [SplitPart(b"m", 50, [51, 52])])))
    h.peer.proposals.append((split.index, TERM, [Handle(b"s", 1)]))
    tb = h.batch()
    h.apply_into(tb, split)
    tb.batch.commit()
    assert isinstance(h.answers[-1][1], EpochNotMatch)
    assert h.peer.region == REGION and not tb.new_regions


def test_a_split_of_another_epoch_or_outside_the_range_is_refused(h: Harness) -> None:
    stale = h.raw_entry(encode_split(SplitCommand(0, [SplitPart(b"m", 50, [51])])))
    outside = h.raw_entry(encode_split(SplitCommand(1, [SplitPart(b"z", 60, [61])])))
    at_start = h.raw_entry(encode_split(SplitCommand(1, [SplitPart(b"b", 70, [71])])))
    for e in (stale, outside, at_start):
        h.peer.proposals.append((e.index, TERM, [Handle(b"s", e.index)]))
    tb = h.batch()
    h.apply_into(tb, stale, outside, at_start)
    tb.batch.commit()
    by_id = h.by_id()
    assert isinstance(by_id[stale.index], EpochNotMatch)
    assert isinstance(by_id[outside.index], KeyNotInRegion)
    assert isinstance(by_id[at_start.index], KeyNotInRegion)
    assert h.peer.region == REGION and not tb.new_regions


def test_a_split_after_a_promotion_in_one_batch_keeps_the_new_membership(h: Harness) -> None:
    learner = h.conf_entry(ConfChangeType.ADD_LEARNER_NODE, 20, 2, 1)
    promote = h.conf_entry(ConfChangeType.ADD_NODE, 20, 2, 2)
    split = h.raw_entry(encode_split(SplitCommand(1, [SplitPart(b"m", 50, [51, 52])])))
    tb = h.batch()
    h.apply_into(tb, learner, promote, split)
    tb.batch.commit()
    cs = PeerStorage(h.engine, REGION.id).region.conf_state
    assert sorted(cs.voters) == [1, 20] and not cs.learners
    [new] = tb.new_regions
    assert sorted(PeerStorage(h.engine, new.region.id).region.conf_state.voters) == [51, 52]


def test_a_region_cut_at_several_keys_at_once(h: Harness) -> None:
    h.apply(h.entry(put(b"c", b"1", seq=1), put(b"k", b"2", seq=2), put(b"s", b"3", seq=3)))
    parts = [SplitPart(b"f", 50, [51]), SplitPart(b"p", 60, [61])]
    split = h.raw_entry(encode_split(SplitCommand(1, parts)))
    h.peer.proposals.append((split.index, TERM, [Handle(b"s", 1)]))
    tb = h.batch()
    h.apply_into(tb, split)
    tb.batch.commit()
    regions = [Region.from_wire(w) for w in h.by_id()[1]]
    assert [(r.id, r.start, r.end) for r in regions] == [
        (1, b"b", b"f"),
        (50, b"f", b"p"),
        (60, b"p", b"x"),
    ]
    assert {r.epoch for r in regions} == {Epoch(2, 1)}
    assert [n.region for n in tb.new_regions] == regions[1:]


def test_keys_out_of_order_or_repeated_are_refused(h: Harness) -> None:
    for keys in ([b"p", b"f"], [b"f", b"f"]):
        parts = [SplitPart(k, 50 + i, [51 + i]) for i, k in enumerate(keys)]
        split = h.raw_entry(encode_split(SplitCommand(1, parts)))
        h.peer.proposals.append((split.index, TERM, [Handle(b"s", split.index)]))
        tb = h.batch()
        h.apply_into(tb, split)
        tb.batch.commit()
        assert isinstance(h.by_id()[split.index], KeyNotInRegion)
        assert not tb.new_regions and h.peer.region == REGION
