from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import zmq

from multiraft.security.trust import PLAIN
from multiraft.transport.zmq import Transport

WAIT_S = 3.0
"""Bound on every wait for a connection or a frame (they take milliseconds)."""


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    try:
        yield context
    finally:
        context.destroy(linger=0)


@pytest.fixture
def make_transport(ctx: zmq.Context) -> Iterator[Callable[[str, int], Transport]]:
    made: list[Transport] = []

    def make(addr: str, store_id: int) -> Transport:
        t = Transport(addr, store_id, ctx)
        made.append(t)
        return t

    try:
        yield make
    finally:
        for t in made:
            t.close()


@pytest.fixture
def dealer(ctx: zmq.Context) -> Iterator[Callable[[str], zmq.Socket]]:
    socks: list[zmq.Socket] = []

    def make(addr: str) -> zmq.Socket:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(f"tcp://{addr}")
        socks.append(s)
        return s

    try:
        yield make
    finally:
        for s in socks:
            s.close(0)


def send_when_connected(t: Transport, store_id: int, frame: bytes) -> None:
    """IMMEDIATE DEALERs refuse sends until connected: retry, bounded."""
    deadline = time.monotonic() + WAIT_S
    while not t.send_to_store(store_id, frame):
        assert time.monotonic() < deadline, f"store {store_id} never became reachable"
        time.sleep(0.005)


def recv_some(t: Transport, n: int) -> list[tuple[bytes, bytes]]:
    """(identity, frame) of the next `n` frames; all of them from PLAIN senders."""
    out: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + WAIT_S
    while len(out) < n:
        assert time.monotonic() < deadline, f"got {len(out)} of {n} frames"
        for identity, frame, sender in t.recv_all(50):
            assert sender is PLAIN
            out.append((identity, frame))
    return out


def test_send_to_store_delivers_a_frame(make_transport, free_addr) -> None:
    addr_a, addr_b = free_addr(), free_addr()
    a, b = make_transport(addr_a, 1), make_transport(addr_b, 2)
    a.set_store_addr(2, addr_b)
    send_when_connected(a, 2, b"hello")
    [(identity, frame)] = recv_some(b, 1)
    assert frame == b"hello"
    assert identity
    big = bytes(range(256)) * 1024  # above the zero-copy threshold
    assert a.send_to_store(2, big)
    assert a.send_to_store(2, b"after")
    assert [f for _, f in recv_some(b, 2)] == [big, b"after"]


def test_recv_all_returns_every_waiting_pair_up_to_max_frames(
    make_transport, free_addr, dealer
) -> None:
    addr = free_addr()
    t = make_transport(addr, 1)
    one, two = dealer(addr), dealer(addr)
    for i in range(5):
        one.send(b"one%d" % i)
    two.send(b"two")
    got = recv_some(t, 6)
    assert sorted(f for _, f in got) == [b"one0", b"one1", b"one2", b"one3", b"one4", b"two"]
    assert len({ident for ident, _ in got}) == 2
    for i in range(5):
        one.send(b"x%d" % i)
    time.sleep(0.05)
    first = [f for _, f, _ in t.recv_all(1000, max_frames=2)]
    assert 1 <= len(first) <= 2
    rest = [f for _, f in recv_some(t, 5 - len(first))]
    assert first + rest == [b"x0", b"x1", b"x2", b"x3", b"x4"]


def test_recv_all_takes_about_max_bytes_per_call(make_transport, free_addr, dealer) -> None:
    addr = free_addr()
    t = make_transport(addr, 1)
    d = dealer(addr)
    frames = [bytes([i]) * 100 for i in range(4)]
    for f in frames:
        d.send(f)
    time.sleep(0.05)
    first = [f for _, f, _ in t.recv_all(1000, max_bytes=150)]
    assert 1 <= len(first) <= 2  # it stops once 150 bytes are in
    rest = [f for _, f in recv_some(t, 4 - len(first))]
    assert first + rest == frames


def test_recv_all_keeps_the_last_part_of_multipart_garbage(
    make_transport, free_addr, dealer
) -> None:
    addr = free_addr()
    t = make_transport(addr, 1)
    d = dealer(addr)
    d.send_multipart([b"a", b"b", b"c"])
    d.send(b"")
    d.send(b"next")
    assert [f for _, f in recv_some(t, 3)] == [b"c", b"", b"next"]


def test_recv_all_honors_its_timeout(make_transport, free_addr) -> None:
    t = make_transport(free_addr(), 1)
    start = time.monotonic()
    assert t.recv_all(0) == []
    assert time.monotonic() - start < 0.5
    start = time.monotonic()
    assert t.recv_all(100) == []
    elapsed = time.monotonic() - start
    assert 0.08 <= elapsed < 1.0


def test_send_to_unknown_store_is_false(make_transport, free_addr) -> None:
    t = make_transport(free_addr(), 1)
    assert t.send_to_store(9, b"x") is False


def test_send_to_unreachable_address_is_false_without_blocking(make_transport, free_addr) -> None:
    t = make_transport(free_addr(), 1)
    t.set_store_addr(2, free_addr())  # nobody listens there
    start = time.monotonic()
    results = [t.send_to_store(2, b"x" * 100) for _ in range(100)]
    assert time.monotonic() - start < 0.5
    assert results == [False] * 100


def test_own_store_id_is_never_a_peer(make_transport, free_addr) -> None:
    addr = free_addr()
    t = make_transport(addr, 1)
    t.set_store_addr(1, addr)
    assert t.send_to_store(1, b"x") is False


def test_reply_reaches_a_dealer_client(make_transport, free_addr, dealer) -> None:
    addr = free_addr()
    t = make_transport(addr, 1)
    client = dealer(addr)
    client.send(b"request")
    [(identity, frame)] = recv_some(t, 1)
    assert frame == b"request"
    t.reply(identity, b"answer")
    t.reply(identity, b"x" * (100 * 1024))
    assert client.poll(int(WAIT_S * 1000))
    assert client.recv() == b"answer"
    assert client.poll(int(WAIT_S * 1000))
    assert client.recv() == b"x" * (100 * 1024)


def test_reply_to_a_gone_client_is_silently_dropped(make_transport, free_addr) -> None:
    t = make_transport(free_addr(), 1)
    t.reply(b"\x00nobody", b"answer")  # must not raise


def test_set_store_addr_moves_a_peer(make_transport, free_addr) -> None:
    addr_old, addr_new = free_addr(), free_addr()
    a = make_transport(free_addr(), 1)
    old = make_transport(addr_old, 2)
    a.set_store_addr(2, addr_old)
    send_when_connected(a, 2, b"to old")
    assert [f for _, f in recv_some(old, 1)] == [b"to old"]
    new = make_transport(addr_new, 2)
    a.set_store_addr(2, addr_new)
    send_when_connected(a, 2, b"to new")
    assert [f for _, f in recv_some(new, 1)] == [b"to new"]
    assert old.recv_all(50) == []


def test_set_store_addr_with_the_same_addr_keeps_the_connection(make_transport, free_addr) -> None:
    addr_b = free_addr()
    a, b = make_transport(free_addr(), 1), make_transport(addr_b, 2)
    a.set_store_addr(2, addr_b)
    send_when_connected(a, 2, b"first")
    a.set_store_addr(2, addr_b)
    # Still connected: an IMMEDIATE send succeeds at once, from the same identity.
    assert a.send_to_store(2, b"second")
    got = recv_some(b, 2)
    assert [f for _, f in got] == [b"first", b"second"]
    assert got[0][0] == got[1][0]


def test_close_releases_the_port_and_forgets_peers(ctx: zmq.Context, free_addr) -> None:
    addr = free_addr()
    t = Transport(addr, 1, ctx)
    t.set_store_addr(2, free_addr())
    t.close()
    assert t.router.closed
    assert t.send_to_store(2, b"x") is False
    deadline = time.monotonic() + WAIT_S
    again = None
    try:
        while again is None:
            try:
                again = Transport(addr, 1, ctx)
            except zmq.ZMQError:
                assert time.monotonic() < deadline, "port still taken after close()"
                time.sleep(0.01)
    finally:
        if again is not None:
            again.close()


def test_binding_a_taken_port_raises(make_transport, free_addr) -> None:
    addr = free_addr()
    make_transport(addr, 1)
    with pytest.raises(zmq.ZMQError):
        make_transport(addr, 2)


def _secure_transport(addr: str, store_id: int, pair, trust) -> Transport:
    from multiraft.transport.zmq import Security

    return Transport(addr, store_id, zmq.Context(), Security(pair, trust))


def test_secure_frames_carry_their_sender_and_a_removed_key_loses_its_rights(
    free_addr,
) -> None:
    from multiraft.security.keys import KeyPair, PublicCert
    from multiraft.security.trust import UNTRUSTED, Principal, TrustTable

    pairs = [KeyPair(*(k.decode() for k in zmq.curve_keypair())) for _ in range(3)]
    certs = [PublicCert(p.public, "store", f"store-{i + 1}", i + 1) for i, p in enumerate(pairs)]
    tables = [TrustTable(i + 1) for i in range(3)]
    for t in tables:
        t.seed(certs[:2])  # store 3's key is trusted by no one
    addrs = [free_addr() for _ in range(3)]
    ts = [_secure_transport(addrs[i], i + 1, pairs[i], tables[i]) for i in range(3)]
    try:
        for t in ts:
            for sid in (1, 2):
                t.set_store_addr(sid, addrs[sid - 1])
        ts[2].set_store_addr(2, addrs[1])  # the untrusted store 3 tries too
        send_when_connected(ts[0], 2, b"from one")
        assert recv_some_secure(ts[1], 1) == [(b"from one", Principal("store", "store-1", 1))]
        assert not ts[2].send_to_store(2, b"from three")  # never connects
        tables[1].remove(pairs[0].public)
        assert ts[0].send_to_store(2, b"again")  # the old connection still carries it...
        got = recv_some_secure(ts[1], 1)
        assert got == [(b"again", UNTRUSTED)]  # ...but it no longer has any rights
        time.sleep(0.3)
        assert ts[1].recv_all(0) == []  # nothing from store 3 ever arrived
    finally:
        for t in ts:
            ctx = t.ctx
            t.close()
            ctx.destroy(linger=0)


def recv_some_secure(t: Transport, n: int) -> list:
    out: list = []
    deadline = time.monotonic() + WAIT_S
    while len(out) < n:
        assert time.monotonic() < deadline
        out += [(f, s) for _, f, s in t.recv_all(50)]
    return out
