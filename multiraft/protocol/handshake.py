"""What a failed ZeroMQ handshake means, in words a user can act on.

ZeroMQ retries a connection whose handshake failed without telling the
socket's owner; a monitor socket does tell (ZMQ_EVENT_HANDSHAKE_*). Both the
store and the client watch their connections with one and turn the event
into a sentence: the other side refused our key, speaks plain ZMTP when we
want CURVE (or the other way round), or could not prove the key we expect.
"""

from __future__ import annotations

import zmq
from zmq.utils.monitor import parse_monitor_message

EVENTS = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
)
"""The events worth watching: how each handshake ended."""


def watch(sock: zmq.Socket, also: int = 0) -> zmq.Socket:
    """A monitor socket reporting how `sock`'s handshakes end, and the
    events in `also`."""
    return sock.get_monitor_socket(EVENTS | also)


def read_events(monitor: zmq.Socket) -> list[tuple[int, int]]:
    """Every (event, value) waiting on a monitor socket, without blocking."""
    out = []
    while int(monitor.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
        parts = monitor.recv_multipart(zmq.NOBLOCK)
        event = parse_monitor_message(parts)
        out.append((event["event"], event["value"]))
    return out


def failure(event: int, value: int, peer: str, secure: bool) -> str | None:
    """Why a connection to `peer` failed, or None for a handshake that worked.

    `secure`: whether our side offered a CURVE key."""
    if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
        return None
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return f"{peer} refused our key (status {value}): it is not trusted by the cluster"
    if not secure:
        # Two plain sides always agree: the other side wants CURVE (it
        # says so, or hangs up on the plain greeting before it can).
        return f"{peer} requires a key (CURVE): give one (--key / MULTIRAFT_KEY)"
    if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return f"{peer} runs in plain mode (no keys) and we use a key: give keys to all or none"
    return (
        f"the handshake with {peer} failed: the public key we hold for it "
        "is not the one it proves (wrong cluster keys?)"
    )


def refusal(event: int, value: int, secure: bool) -> str | None:
    """Why a store refused an incoming connection, or None if it took it
    (or has said why already)."""
    if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
        return None
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return None  # the ZAP handler logged the key it refused
    if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        if secure:
            return "refused a plain (keyless) connection: this store requires CURVE keys"
        return "refused a CURVE connection: this store runs in plain mode (no --key)"
    return f"an incoming connection failed its handshake (event {event}, value {value})"
