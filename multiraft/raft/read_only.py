"""ReadIndex requests waiting for a heartbeat quorum (the SAFE read mode).

A leader records the commit index when a read arrives, then piggybacks the
read's context on a heartbeat; once a quorum acknowledges that heartbeat the
leader knows it was still the leader at that moment, so the read (and every
read queued before it) may be served at the recorded index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import ReadOnlyOption
from .types import Message


@dataclass(slots=True)
class ReadIndexStatus:
    req: Message
    index: int
    acks: set[int] = field(default_factory=set)


class ReadOnly:
    __slots__ = ("option", "pending", "queue")

    def __init__(self, option: ReadOnlyOption) -> None:
        self.option = option
        self.pending: dict[bytes, ReadIndexStatus] = {}
        self.queue: list[bytes] = []

    def add_request(self, index: int, m: Message) -> None:
        ctx = m.context
        if ctx in self.pending:
            return
        self.pending[ctx] = ReadIndexStatus(m, index)
        self.queue.append(ctx)

    def recv_ack(self, node_id: int, ctx: bytes) -> set[int] | None:
        """Record that `node_id` acknowledged the heartbeat carrying `ctx`."""
        rs = self.pending.get(ctx)
        if rs is None:
            return None
        rs.acks.add(node_id)
        return rs.acks

    def advance(self, ctx: bytes) -> list[ReadIndexStatus]:
        """Pop and return every request up to and including `ctx`."""
        try:
            pos = self.queue.index(ctx)
        except ValueError:
            return []
        done = self.queue[: pos + 1]
        del self.queue[: pos + 1]
        return [self.pending.pop(c) for c in done]

    def last_pending_request_ctx(self) -> bytes:
        return self.queue[-1] if self.queue else b""

    def reset(self) -> None:
        self.pending.clear()
        self.queue.clear()
