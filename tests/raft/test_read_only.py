"""ReadOnly: ReadIndex requests waiting for a heartbeat quorum."""

from multiraft.raft.config import ReadOnlyOption
from multiraft.raft.read_only import ReadOnly
from multiraft.raft.types import Message, MessageType


def req(ctx, frm=0):
    return Message(MessageType.READ_INDEX, frm=frm, context=ctx)


def test_empty():
    ro = ReadOnly(ReadOnlyOption.SAFE)
    assert ro.option == ReadOnlyOption.SAFE
    assert ro.last_pending_request_ctx() == b""
    assert ro.recv_ack(1, b"x") is None
    assert ro.advance(b"x") == []


def test_add_request_and_acks():
    ro = ReadOnly(ReadOnlyOption.SAFE)
    m = req(b"a", frm=2)
    ro.add_request(7, m)
    assert ro.last_pending_request_ctx() == b"a"
    assert ro.recv_ack(1, b"a") == {1}
    assert ro.recv_ack(3, b"a") == {1, 3}
    assert ro.recv_ack(3, b"a") == {1, 3}
    assert ro.recv_ack(1, b"other") is None
    (rs,) = ro.advance(b"a")
    assert (rs.req, rs.index, rs.acks) == (m, 7, {1, 3})
    assert ro.pending == {} and ro.queue == []


def test_duplicate_request_is_ignored():
    ro = ReadOnly(ReadOnlyOption.SAFE)
    first = req(b"a", frm=1)
    ro.add_request(5, first)
    ro.add_request(9, req(b"a", frm=2))
    assert ro.queue == [b"a"]
    assert ro.pending[b"a"].req is first
    assert ro.pending[b"a"].index == 5


def test_advance_releases_every_earlier_request():
    ro = ReadOnly(ReadOnlyOption.SAFE)
    for i, ctx in enumerate([b"a", b"b", b"c", b"d"]):
        ro.add_request(10 + i, req(ctx))
    assert ro.last_pending_request_ctx() == b"d"
    done = ro.advance(b"b")
    assert [(rs.req.context, rs.index) for rs in done] == [(b"a", 10), (b"b", 11)]
    assert ro.queue == [b"c", b"d"]
    assert set(ro.pending) == {b"c", b"d"}
    assert ro.recv_ack(1, b"a") is None
    assert ro.advance(b"a") == []
    assert [rs.index for rs in ro.advance(b"d")] == [12, 13]
    assert ro.last_pending_request_ctx() == b""


def test_reset():
    ro = ReadOnly(ReadOnlyOption.LEASE_BASED)
    ro.add_request(1, req(b"a"))
    ro.reset()
    assert ro.pending == {} and ro.queue == []
    assert ro.option == ReadOnlyOption.LEASE_BASED
