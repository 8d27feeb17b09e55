"""Joining a running cluster: ask any member for the cluster's id and its
store list, and be added to that list (which gossip then spreads)."""

from __future__ import annotations

import time

import zmq

from ..protocol import wire
from .meta import StartupError

JOIN_TIMEOUT = 30.0
"""How long a new store keeps asking the member it was pointed at."""
ATTEMPT_TIMEOUT = 1.0


def ask_to_join(member: str, store_id: int, addr: str) -> tuple[int, dict[int, str]]:
    """(cluster_id, {store_id: addr}) from `member`, which has added this
    store to its list; raises StartupError if it refuses or never answers."""
    deadline = time.monotonic() + JOIN_TIMEOUT
    args = {"store_id": store_id, "addr": addr}
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        reply = _request(member, wire.Request(attempt, "join", args))
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


def _request(member: str, req: wire.Request) -> wire.Reply | None:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(f"tcp://{member}")
        sock.send(wire.encode_request(req))
        if not sock.poll(int(ATTEMPT_TIMEOUT * 1000)):
            return None
        try:
            reply = wire.decode_client_frame(sock.recv())
        except wire.CodecError:
            return None
        return reply if isinstance(reply, wire.Reply) else None
    finally:
        sock.close(0)
