"""Wire forms and helpers of multiraft.raft.types."""

import msgpack
import pytest

from multiraft.raft.types import (
    EMPTY_HARD_STATE,
    EMPTY_SNAPSHOT,
    LOCAL_MESSAGES,
    RESPONSE_MESSAGES,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
    entries_size,
    limit_size,
    vote_response_type,
)


def over_wire(obj):
    """to_wire -> msgpack bytes -> from_wire, the way transport and storage do it."""
    return type(obj).from_wire(msgpack.unpackb(msgpack.packb(obj.to_wire())))


SNAP = Snapshot(b"state", SnapshotMetadata(ConfState((1, 2, 3), (4,)), index=10, term=3))


@pytest.mark.parametrize(
    "obj",
    [
        Entry(1, 1),
        Entry(7, 42, EntryType.CONF_CHANGE, b"\x00\xffcc"),
        HardState(),
        HardState(5, 2, 17),
        ConfState(),
        ConfState((1, 2, 3), (4, 5)),
        SnapshotMetadata(),
        SNAP.metadata,
        EMPTY_SNAPSHOT,
        SNAP,
        ConfChange(ConfChangeType.ADD_LEARNER_NODE, 9, b"ctx"),
    ],
)
def test_value_round_trip(obj):
    back = over_wire(obj)
    assert back == obj
    assert type(back) is type(obj)


def test_entry_from_wire_restores_enum():
    e = over_wire(Entry(2, 3, EntryType.CONF_CHANGE, b"x"))
    assert e.type is EntryType.CONF_CHANGE


def test_conf_state_from_wire_gives_tuples():
    cs = over_wire(ConfState((3, 1), (2,)))
    assert cs.voters == (3, 1) and cs.learners == (2,)
    assert isinstance(cs.voters, tuple) and isinstance(cs.learners, tuple)


def test_message_round_trip_with_entries_and_snapshot():
    m = Message(
        MessageType.APP,
        to=2,
        frm=1,
        term=4,
        log_term=3,
        index=9,
        entries=[Entry(4, 10, data=b"a"), Entry(4, 11, EntryType.CONF_CHANGE, b"b")],
        commit=8,
        snapshot=SNAP,
        reject=True,
        reject_hint=6,
        context=b"ctx",
    )
    back = over_wire(m)
    assert back == m
    assert back.type is MessageType.APP
    assert back.entries[1].type is EntryType.CONF_CHANGE
    assert back.snapshot == SNAP


def test_message_round_trip_minimal():
    m = Message(MessageType.HEARTBEAT_RESP, to=1, frm=2, term=3)
    back = over_wire(m)
    assert back == m
    assert back.snapshot is None
    assert back.entries == []
    assert back.reject is False


def test_message_from_wire_coerces_reject_to_bool():
    w = Message(MessageType.APP_RESP, reject=True).to_wire()
    w[9] = 1
    assert Message.from_wire(w).reject is True


def test_message_wire_form_is_plain_lists_and_ints():
    w = Message(MessageType.VOTE, 2, 1, 3, entries=[Entry(1, 1)]).to_wire()
    assert w[0] == 5 and type(w[0]) is int
    assert w[6] == [[1, 1, 0, b""]]
    assert w[8] is None


def test_conf_change_encode_decode():
    cc = ConfChange(ConfChangeType.REMOVE_NODE, 3, b"why")
    data = cc.encode()
    assert isinstance(data, bytes)
    back = ConfChange.decode(data)
    assert back == cc
    assert back.type is ConfChangeType.REMOVE_NODE


def test_conf_change_default_context():
    assert ConfChange.decode(ConfChange(ConfChangeType.ADD_NODE, 2).encode()).context == b""


def test_conf_change_decode_rejects_unknown_type():
    with pytest.raises(ValueError):
        ConfChange.decode(msgpack.packb([99, 1, b""]))


E4, E5, E6 = Entry(4, 4), Entry(5, 5), Entry(6, 6)
ENTS = [E4, E5, E6]


@pytest.mark.parametrize(
    "max_size, want",
    [
        (2**64, ENTS),
        (0, [E4]),  # always at least one entry
        (E4.size() + E5.size(), [E4, E5]),
        (E4.size() + E5.size() + E6.size() // 2, [E4, E5]),
        (E4.size() + E5.size() + E6.size() - 1, [E4, E5]),
        (E4.size() + E5.size() + E6.size(), ENTS),
    ],
)
def test_limit_size(max_size, want):
    assert limit_size(ENTS, max_size) == want


def test_limit_size_empty():
    assert limit_size([], 0) == []


def test_entry_size_and_entries_size():
    assert Entry(1, 1).size() == 12
    assert Entry(1, 1, data=b"abc").size() == 15
    assert entries_size([Entry(1, 1), Entry(1, 2, data=b"abc")]) == 27
    assert entries_size([]) == 0


@pytest.mark.parametrize(
    "req, resp",
    [
        (MessageType.VOTE, MessageType.VOTE_RESP),
        (MessageType.PRE_VOTE, MessageType.PRE_VOTE_RESP),
    ],
)
def test_vote_response_type(req, resp):
    assert vote_response_type(req) is resp


@pytest.mark.parametrize(
    "t", [t for t in MessageType if t not in (MessageType.VOTE, MessageType.PRE_VOTE)]
)
def test_vote_response_type_rejects_other_types(t):
    with pytest.raises(ValueError):
        vote_response_type(t)


def test_empty_states():
    assert EMPTY_HARD_STATE.is_empty()
    assert HardState().is_empty()
    assert not HardState(commit=1).is_empty()
    assert not HardState(vote=1).is_empty()
    assert EMPTY_SNAPSHOT.is_empty()
    assert Snapshot(b"data").is_empty()  # emptiness is decided by the index
    assert not SNAP.is_empty()


def test_message_classes():
    assert {
        MessageType.HUP,
        MessageType.BEAT,
        MessageType.UNREACHABLE,
        MessageType.SNAP_STATUS,
        MessageType.CHECK_QUORUM,
    } == LOCAL_MESSAGES
    assert MessageType.APP_RESP in RESPONSE_MESSAGES
    assert MessageType.APP not in RESPONSE_MESSAGES


def test_message_encodes_to_bytes_and_back_as_conf_change_does():
    m = Message(
        MessageType.APP, to=2, frm=1, term=3, entries=[Entry(3, 4, data=b"d")], snapshot=SNAP
    )
    data = m.encode()
    assert isinstance(data, bytes) and Message.decode(data) == m
