from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multiraft.protocol.region import LEARNER, Epoch, PeerMeta, Region
from multiraft.raft import ConfChangeType, Entry, EntryType
from multiraft.storage import keys, kv
from multiraft.storage.engine import Engine
from multiraft.storage.peer_storage import PeerStorage
from multiraft.store.apply import (
    BOOTSTRAP_INDEX,
    Applier,
    bootstrap_region,
    is_tombstoned,
    load_sessions,
)
from multiraft.store.commands import (
    CAS,
    DELETE,
    PUT,
    SplitCommand,
    WriteCommand,
    decode_entry,
    encode_split,
    encode_writes,
    ok,
)
from multiraft.store.membership import conf_change
from multiraft.store.peer import Handle, Peer, RaftSettings
from multiraft.store.session import DUPLICATE_BELOW_ACKED, SessionTable

TERM = BOOTSTRAP_INDEX + 1
REGION = Region(1, b"b", b"x", Epoch(1, 1), (PeerMeta(1, 1),))


class Harness:
    """One region with one replica on store 1, over a real LMDB engine."""

    def __init__(self, path: Path, region: Region = REGION) -> None:
        self.path = path
        self.engine = Engine(path, sync=False, map_size=1 << 22)
        storage = PeerStorage(self.engine, region.id)
        batch = self.engine.batch()
        bootstrap_region(batch, storage, region)
        batch.commit()
        self.peer = Peer(1, region, storage, SessionTable(), RaftSettings())
        self.replies: list[tuple[Handle, Any]] = []
        self.next_index = BOOTSTRAP_INDEX + 1

    def reply(self, handle: Handle, result: Any) -> None:
        self.replies.append((handle, result))

    def entry(self, *cmds: WriteCommand, term: int = TERM) -> Entry:
        e = Entry(term, self.next_index, EntryType.NORMAL, encode_writes(list(cmds)))
        self.next_index += 1
        return e

    def applier(self) -> Applier:
        return Applier(self.engine, self.engine.batch(), self.reply)

    def apply(self, *entries: Entry, propose: bool = True) -> dict[int, list]:
        """Apply `entries` in one batch and commit it; with `propose`, each
        entry has a matching proposal and the results come back by request id."""
        first_id = len(self.replies)
        if propose:
            for e in entries:
                n = len(_writes_of(e))
                handles = [Handle(b"c", e.index * 100 + i) for i in range(n)]
                self.peer.proposals.append((e.index, e.term, handles))
        applier = self.applier()
        applier.apply(self.peer, list(entries))
        applier.batch.commit()
        return {h.request_id: r for h, r in self.replies[first_id:]}

    def results(self, e: Entry, replies: dict[int, list]) -> list:
        return [replies[e.index * 100 + i] for i in range(len(_writes_of(e)))]


def _writes_of(e: Entry) -> list:
    return decode_entry(e.data)[1] if e.data else []


def put(key: bytes, value: bytes, client: int = 1, seq: int = 1, acked: int = 0) -> WriteCommand:
    return WriteCommand(PUT, client, seq, acked, 1, key, value)


def delete(key: bytes, client: int = 1, seq: int = 1, acked: int = 0) -> WriteCommand:
    return WriteCommand(DELETE, client, seq, acked, 1, key)


def cas(key: bytes, expected: bytes | None, new: bytes | None, client: int = 1, seq: int = 1):
    return WriteCommand(CAS, client, seq, 0, 1, key, expected, new)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "store")
    try:
        yield harness
    finally:
        harness.engine.close()


def test_put_delete_cas_semantics(h: Harness) -> None:
    e1 = h.entry(put(b"k", b"1", seq=1), put(b"other", b"o", seq=2))
    e2 = h.entry(
        cas(b"k", b"1", b"2", seq=3),  # swaps
        cas(b"k", b"1", b"3", seq=4),  # sees 2: no swap
        cas(b"new", None, b"n", seq=5),  # absent -> set
        cas(b"new", None, b"m", seq=6),  # present: no swap
    )
    e3 = h.entry(delete(b"k", seq=7), cas(b"new", b"n", None, seq=8), delete(b"missing", seq=9))
    replies = h.apply(e1, e2, e3)
    assert h.results(e1, replies) == [ok(), ok()]
    assert h.results(e2, replies) == [ok(True), ok(False), ok(True), ok(False)]
    assert h.results(e3, replies) == [ok(), ok(True), ok()]
    assert kv.get(h.engine, b"k") is None
    assert kv.get(h.engine, b"new") is None
    assert kv.get(h.engine, b"other") == b"o"


def test_two_cas_on_one_key_in_one_batch_see_each_other(h: Harness) -> None:
    h.apply(h.entry(put(b"k", b"0", seq=1)))
    e1 = h.entry(cas(b"k", b"0", b"1", client=1, seq=2), cas(b"k", b"0", b"x", client=2, seq=1))
    e2 = h.entry(cas(b"k", b"1", b"2", client=3, seq=1))
    h.replies.clear()
    h.peer.proposals.append((e1.index, TERM, [Handle(b"c", 1), Handle(b"c", 2)]))
    h.peer.proposals.append((e2.index, TERM, [Handle(b"c", 3)]))
    applier = h.applier()
    applier.apply(h.peer, [e1])
    applier.apply(h.peer, [e2])  # a second call in the same turn, same batch
    assert kv.get(h.engine, b"k") == b"0"  # nothing is visible before the commit
    applier.batch.commit()
    got = [r for _, r in h.replies]
    assert got == [ok(True), ok(False), ok(True)]
    assert kv.get(h.engine, b"k") == b"2"


def test_delete_then_cas_absent_in_one_batch(h: Harness) -> None:
    h.apply(h.entry(put(b"k", b"0", seq=1)))
    e = h.entry(delete(b"k", seq=2), cas(b"k", None, b"fresh", seq=3))
    assert h.results(e, h.apply(e)) == [ok(), ok(True)]
    assert kv.get(h.engine, b"k") == b"fresh"


def test_duplicate_is_answered_from_the_session_and_not_reapplied(h: Harness) -> None:
    e1 = h.entry(cas(b"k", None, b"1", client=9, seq=4))
    assert h.results(e1, h.apply(e1)) == [ok(True)]
    h.apply(h.entry(put(b"k", b"0", client=8, seq=1)))  # someone else resets it
    retry = h.entry(cas(b"k", None, b"1", client=9, seq=4))
    assert h.results(retry, h.apply(retry)) == [ok(True)]  # the first answer...
    assert kv.get(h.engine, b"k") == b"0"  # ...and not applied again
    # the same retry inside one entry is deduplicated as well
    twice = h.entry(put(b"j", b"a", client=9, seq=5), put(b"j", b"b", client=9, seq=5))
    assert h.results(twice, h.apply(twice)) == [ok(), ok()]
    assert kv.get(h.engine, b"j") == b"a"


def test_sessions_survive_a_reload_from_disk(h: Harness) -> None:
    h.apply(h.entry(cas(b"k", None, b"1", client=9, seq=4)))
    h.apply(h.entry(put(b"k", b"0", client=8, seq=1)))
    h.peer.sessions = load_sessions(h.engine, REGION.id)
    retry = h.entry(cas(b"k", None, b"1", client=9, seq=4))
    assert h.results(retry, h.apply(retry)) == [ok(True)]
    assert kv.get(h.engine, b"k") == b"0"


def test_seq_below_acked_is_refused_and_not_applied(h: Harness) -> None:
    h.apply(
        h.entry(put(b"k", b"1", seq=1), put(b"k", b"2", seq=2), put(b"k", b"3", seq=3, acked=3))
    )
    late = h.entry(put(b"k", b"stale", seq=1, acked=3))
    assert h.results(late, h.apply(late)) == [DUPLICATE_BELOW_ACKED]
    assert kv.get(h.engine, b"k") == b"3"


def test_key_outside_the_region_is_refused_and_not_recorded(h: Harness) -> None:
    e = h.entry(put(b"z", b"v", client=5, seq=1), put(b"a", b"v", client=5, seq=2))
    results = h.results(e, h.apply(e))
    for r in results:
        assert r[:2] == ["err", "KeyNotInRegion"]
        assert r[3] == {"region": REGION.to_wire()}
    assert kv.get(h.engine, b"z") is None and kv.get(h.engine, b"a") is None
    assert h.peer.sessions.lookup(5, 1, 0, 100) is None
    assert load_sessions(h.engine, REGION.id).sessions == {}
    # the client retries the same seq with a key that belongs here: applied
    retry = h.entry(put(b"c", b"v", client=5, seq=1))
    assert h.results(retry, h.apply(retry)) == [ok()]
    assert kv.get(h.engine, b"c") == b"v"


def test_applied_index_and_sessions_are_persisted_in_the_same_batch(h: Harness) -> None:
    e1 = h.entry(put(b"k", b"v", client=3, seq=1))
    e2 = h.entry(cas(b"k", b"v", b"w", client=4, seq=7))
    applier = h.applier()
    applier.apply(h.peer, [e1, e2])
    # Before the commit nothing of it is on disk.
    assert h.peer.storage.apply_state.applied_index == BOOTSTRAP_INDEX
    assert load_sessions(h.engine, REGION.id).sessions == {}
    assert kv.get(h.engine, b"k") is None
    applier.batch.commit()
    h.engine.close()
    with Engine(h.path, sync=False) as again:
        assert PeerStorage(again, REGION.id).apply_state.applied_index == e2.index
        sessions = load_sessions(again, REGION.id).sessions
        assert set(sessions) == {3, 4}
        assert sessions[4].results == {7: ok(True)}
        assert sessions[4].last_index == e2.index
        assert kv.get(again, b"k") == b"w"
        prefix = keys.session_prefix(REGION.id)
        assert again.get(prefix + keys.pack_u64(3)) is not None
    h.engine = Engine(h.path, sync=False)  # for the fixture to close


def test_empty_entries_advance_the_applied_index(h: Harness) -> None:
    noop = Entry(TERM, h.next_index)
    h.next_index += 1
    h.apply(noop, propose=False)
    assert h.peer.storage.apply_state.applied_index == noop.index
    h.apply(propose=False)  # nothing to apply: nothing changes
    assert h.peer.storage.apply_state.applied_index == noop.index


def test_replies_are_matched_by_index_and_term(h: Harness) -> None:
    mine = h.entry(put(b"k", b"mine", client=1, seq=1))
    theirs = h.entry(put(b"k", b"theirs", client=2, seq=1), term=TERM + 1)
    later = Entry(TERM + 1, h.next_index, EntryType.NORMAL, b"")
    h.peer.proposals.extend(
        [
            (mine.index, TERM, [Handle(b"a", 1)]),
            (theirs.index, TERM, [Handle(b"b", 2)]),  # overwritten by a new leader
            (later.index + 5, TERM, [Handle(b"c", 3)]),  # can no longer commit
        ]
    )
    h.apply(mine, theirs, propose=False)
    by_id = {hd.request_id: r for hd, r in h.replies}
    assert by_id[1] == ok()
    for rid in (2, 3):
        assert by_id[rid][:2] == ["err", "NotLeader"]
        assert by_id[rid][3]["region"] == REGION.to_wire()
    assert len(h.replies) == 3
    assert not h.peer.proposals
    assert kv.get(h.engine, b"k") == b"theirs"  # the committed entry is applied all the same


def test_proposal_of_an_undecodable_entry_gets_no_answer(h: Harness) -> None:
    bad = Entry(TERM, h.next_index, EntryType.NORMAL, b"\xc1garbage")
    h.next_index += 1
    h.peer.proposals.append((bad.index, TERM, [Handle(b"a", 1)]))
    h.apply(bad, propose=False)
    assert h.replies == []
    assert h.peer.storage.apply_state.applied_index == bad.index


def test_unknown_write_op_is_an_invalid_request(h: Harness) -> None:
    e = h.entry(WriteCommand(9, 1, 1, 0, 1, b"k", b"v"))
    [result] = h.results(e, h.apply(e))
    assert result[:2] == ["err", "InvalidRequest"]
    assert kv.get(h.engine, b"k") is None


def test_split_shrinks_the_region_for_later_commands_of_the_batch(h: Harness) -> None:
    h.apply(h.entry(put(b"p", b"1", client=6, seq=1)))
    split = Entry(
        TERM, h.next_index, EntryType.NORMAL, encode_split(SplitCommand(1, b"m", 50, [51]))
    )
    h.next_index += 1
    after = h.entry(put(b"q", b"2", client=6, seq=2), put(b"c", b"3", client=6, seq=3))
    h.peer.proposals.append((split.index, TERM, [Handle(b"s", 1)]))
    h.peer.proposals.append((after.index, TERM, [Handle(b"s", 2), Handle(b"s", 3)]))
    applier = h.applier()
    applier.apply(h.peer, [split, after])
    applier.batch.commit()
    by_id = {hd.request_id: r for hd, r in h.replies}
    left, right = Region.from_wire(by_id[1][1][0]), Region.from_wire(by_id[1][1][1])
    assert (left.start, left.end, left.epoch) == (b"b", b"m", Epoch(2, 1))
    assert (right.id, right.start, right.end, right.peers) == (50, b"m", b"x", (PeerMeta(1, 51),))
    assert h.peer.region == left
    assert by_id[2][:2] == ["err", "KeyNotInRegion"]
    assert by_id[3] == ok()
    [(parent, new_region, _storage, sessions)] = applier.splits
    assert parent is h.peer and new_region == right
    assert sessions.lookup(6, 1, 0, 0) == ok()  # retries may land on the new half
    assert set(load_sessions(h.engine, 50).sessions) == {6}


def test_a_split_proposed_before_a_membership_change_is_refused_as_stale(h: Harness) -> None:
    split = Entry(
        TERM, h.next_index, EntryType.NORMAL, encode_split(SplitCommand(1, b"m", 50, [51, 52]))
    )
    h.next_index += 1
    h.peer.proposals.append((split.index, TERM, [Handle(b"s", 1)]))
    applier = h.applier()
    applier.apply(h.peer, [split])
    applier.batch.commit()
    assert h.replies[-1][1][:2] == ["err", "EpochNotMatch"]
    assert h.peer.region == REGION and not applier.splits


def conf_entry(h: Harness, kind: ConfChangeType, peer_id: int, store_id: int, conf_ver: int):
    e = Entry(
        TERM,
        h.next_index,
        EntryType.CONF_CHANGE,
        conf_change(kind, peer_id, store_id, conf_ver).encode(),
    )
    h.next_index += 1
    h.peer.proposals.append((e.index, TERM, [Handle(b"m", e.index)]))
    return e


def test_conf_changes_update_descriptor_raft_and_storage_or_are_refused(h: Harness) -> None:
    add = conf_entry(h, ConfChangeType.ADD_LEARNER_NODE, 20, 2, 1)
    stale = conf_entry(h, ConfChangeType.ADD_NODE, 20, 2, 1)  # proposed at conf_ver 1 too
    applier = h.applier()
    applier.apply(h.peer, [add, stale])
    applier.batch.commit()
    by_index = {hd.request_id: r for hd, r in h.replies}
    region = Region.from_wire(by_index[add.index][1])
    assert region.peer_on(2) == PeerMeta(2, 20, LEARNER) and region.epoch == Epoch(1, 2)
    assert by_index[stale.index][:2] == ["err", "EpochNotMatch"]
    assert h.peer.region == region and applier.changed == [h.peer]
    assert h.peer.raw_node.raft.prs.conf_state().learners == (20,)
    reopened = PeerStorage(h.engine, REGION.id)
    assert reopened.region.conf_state.learners == (20,)
    assert reopened.apply_state.applied_index == stale.index


def test_removing_this_replica_destroys_it_and_applies_nothing_after(h: Harness) -> None:
    h.apply(h.entry(put(b"p", b"1")))
    learner = conf_entry(h, ConfChangeType.ADD_LEARNER_NODE, 20, 2, 1)
    promote = conf_entry(h, ConfChangeType.ADD_NODE, 20, 2, 2)
    remove_me = conf_entry(h, ConfChangeType.REMOVE_NODE, 1, 1, 3)
    later = h.entry(put(b"q", b"2", seq=2))
    applier = h.applier()
    applier.apply(h.peer, [learner, promote, remove_me, later])
    applier.batch.commit()
    assert applier.removed == [h.peer]
    assert [p.store_id for p in h.peer.region.peers] == [2]
    assert PeerStorage(h.engine, REGION.id).region.descriptor == b""
    assert kv.get(h.engine, b"q") is None  # the entry after the removal was not applied
    assert is_tombstoned(h.engine, REGION, 1)


def test_a_split_after_a_promotion_in_one_batch_keeps_the_new_membership(h: Harness) -> None:
    learner = conf_entry(h, ConfChangeType.ADD_LEARNER_NODE, 20, 2, 1)
    promote = conf_entry(h, ConfChangeType.ADD_NODE, 20, 2, 2)
    split = Entry(
        TERM, h.next_index, EntryType.NORMAL, encode_split(SplitCommand(1, b"m", 50, [51, 52]))
    )
    h.next_index += 1
    applier = h.applier()
    applier.apply(h.peer, [learner, promote, split])
    applier.batch.commit()
    cs = PeerStorage(h.engine, REGION.id).region.conf_state
    assert sorted(cs.voters) == [1, 20] and not cs.learners
    [(_parent, right, _storage, _sessions)] = applier.splits
    assert sorted(PeerStorage(h.engine, right.id).region.conf_state.voters) == [51, 52]
