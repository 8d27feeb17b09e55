"""Joining a running cluster: ask any member for the cluster's id and its
store list, and be added to that list (which gossip then spreads).

A secure store asks over CURVE with its own key, expecting the member's key
from the `--trusted` certificate that names the member's address; the member
takes the join only from a trusted store key of the joining store's id."""

from __future__ import annotations

import time

import zmq

from ..protocol import handshake, wire
from .config import SecurityConfig
from .meta import StartupError

JOIN_TIMEOUT = 30.0
"""How long a new store keeps asking the member it was pointed at."""
ATTEMPT_TIMEOUT = 1.0
REFUSED_FOR = 5.0
"""How long a refused handshake is retried: a key trusted a moment ago
reaches the member by gossip within a second or two."""


class _Refused(Exception):
    """The member refused the secure handshake (the reason is the message)."""


def ask_to_join(
    member: str, store_id: int, addr: str, security: SecurityConfig | None = None
) -> tuple[int, dict[int, str]]:
    """(cluster_id, {store_id: addr}) from `member`, which has added this
    store to its list; raises StartupError if it refuses or never answers."""
    start = time.monotonic()
    args = {"store_id": store_id, "addr": addr}
    attempt = 0
    while time.monotonic() < start + JOIN_TIMEOUT:
        attempt += 1
        try:
            reply = _request(member, wire.Request(attempt, "join", args), security)
        except _Refused as e:
            if time.monotonic() > start + REFUSED_FOR:
                raise StartupError(f"cannot join: {e}") from None
            time.sleep(0.2)
            continue
        if reply is None:
            continue
        if not reply.ok:
            raise StartupError(f"{member} refused the join: {reply.result[1]}")
        try:
            stores = {int(k): str(v) for k, v in reply.result["stores"].items()}
            return int(reply.result["cluster_id"]), stores
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise StartupError(f"{member} sent a malformed join reply: {e}") from None
    raise StartupError(f"no answer from {member} within {JOIN_TIMEOUT:.0f} s")


def _member_key(member: str, security: SecurityConfig) -> str:
    for cert in security.trusted:
        if cert.role == "store" and cert.addr == member:
            return cert.public
    raise StartupError(f"no --trusted store certificate has addr {member}: cannot verify it")


def _request(member: str, req: wire.Request, security: SecurityConfig | None) -> wire.Reply | None:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if security is not None:
        sock.curve_serverkey = _member_key(member, security).encode()
        sock.curve_publickey = security.key.public.encode()
        sock.curve_secretkey = security.key.secret.encode()
    monitor = handshake.watch(sock)
    try:
        sock.connect(f"tcp://{member}")
        sock.send(wire.encode_request(req))
        if not sock.poll(int(ATTEMPT_TIMEOUT * 1000)):
            for event, value in handshake.read_events(monitor):
                why = handshake.failure(event, value, member, security is not None)
                if why is not None:
                    raise _Refused(why)
            return None
        try:
            reply = wire.decode_client_frame(sock.recv())
        except wire.CodecError:
            return None
        return reply if isinstance(reply, wire.Reply) else None
    finally:
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
