"""What a turn leaves for the shell to send: Raft messages grouped by
destination store (one PEER frame per store and send point), other frames
for stores (gossip, snapshot chunks and acks), and answers grouped by
client (one REPLIES frame per client and send point).

Raft messages come in two kinds: those that may leave before the turn's
commit (a leader's appends and heartbeats, Raft thesis 10.2.1) and those
that must wait for it. Answers may leave before the commit: those of
writes are for entries already committed on a majority, and reads are
served only after it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import MultiraftError
from ..protocol import wire
from ..raft import Message
from ..transport import codec
from .metrics import StoreMetrics

REPLY_BATCH_BYTES = 1024 * 1024
"""A REPLIES frame is closed once this full (a bigger reply goes alone)."""

StoreFrame = tuple[int, bytes]
"""(destination store id, frame)."""
ClientFrame = tuple[bytes, bytes]
"""(client's ZeroMQ identity, frame)."""


@dataclass(slots=True)
class Handle:
    """Where a client's answer goes: its ZeroMQ identity and request id.

    `Handle.held` counts the handles alive: the requests this store holds,
    queued, proposed or waiting for a read index. A handle dies when its
    answer has left or when its request is given up (a dropped proposal),
    whatever path it took, so the count cannot drift; the service refuses
    new requests while it is too high (`Service.handle`)."""

    identity: bytes
    request_id: int
    batched: bool = False
    """Asked in a REQUESTS frame: answered in a REPLIES frame with the other
    answers to the same client that leave at the same point of the turn."""
    op: str = ""
    since: float = 0.0
    """The request's op and the clock of the turn that took it in (metrics)."""
    held: ClassVar[int] = 0

    def __post_init__(self) -> None:
        Handle.held += 1

    def __del__(self) -> None:
        Handle.held -= 1


class Outbox:
    def __init__(self, cluster_id: int, store_id: int) -> None:
        self.cluster_id = cluster_id
        self.store_id = store_id
        self.metrics = StoreMetrics(store_id)
        """Counts what leaves: Raft messages by type, answers by op and result."""
        self._raft: dict[bool, dict[int, list[codec.RaftItem]]] = {
            True: defaultdict(list),
            False: defaultdict(list),
        }
        self._beats: dict[bool, dict[int, list[int]]] = {
            True: defaultdict(list),
            False: defaultdict(list),
        }
        self._frames: list[StoreFrame] = []
        self._replies: list[tuple[Handle, Any]] = []
        self.sent_to: dict[int, list[tuple[int, int]]] = defaultdict(list)
        """(region id, peer id) of the Raft messages framed for each store
        since `forget_sent`: reported unreachable if the frame was refused."""

    def raft(self, store_id: int, item: codec.RaftItem, *, early: bool = False) -> None:
        self._raft[early][store_id].append(item)
        self.metrics.count(self.metrics.raft_sent, item.message.type)

    def beat(
        self, store_id: int, region_id: int, m: Message, flags: int, *, early: bool = False
    ) -> None:
        """A heartbeat or its response, coalesced into the store pair's frame."""
        self._beats[early][store_id] += (region_id, m.frm, m.to, m.term, m.commit, flags)
        self.metrics.count(self.metrics.raft_sent, m.type)

    def frame(self, store_id: int, frame: bytes) -> None:
        self._frames.append((store_id, frame))

    def reply(self, handle: Handle, result: Any) -> None:
        """Answer a request: `result` is a value or a `MultiraftError`."""
        self._replies.append((handle, result))

    def take_raft(self, *, early: bool) -> list[StoreFrame]:
        """One PEER frame per destination store for the Raft messages so far."""
        if not (self._raft[early] or self._beats[early]):
            return []
        by_store, self._raft[early] = self._raft[early], defaultdict(list)
        beats, self._beats[early] = self._beats[early], defaultdict(list)
        frames = []
        for store_id in by_store.keys() | beats.keys():
            items, flat = by_store.get(store_id, []), beats.get(store_id, [])
            sent = self.sent_to[store_id]
            sent.extend((it.region_id, it.message.to) for it in items)
            sent.extend(
                zip(flat[0 :: codec.BEAT_FIELDS], flat[2 :: codec.BEAT_FIELDS], strict=True)
            )
            batch = codec.PeerBatch(self.cluster_id, self.store_id, items, beats=flat)
            frames.append((store_id, codec.encode_peer_batch(batch)))
        return frames

    def take_frames(self) -> list[StoreFrame]:
        frames, self._frames = self._frames, []
        return frames

    def take_replies(self, now: float) -> list[ClientFrame]:
        """The answers so far: one REPLIES frame per client (more past
        REPLY_BATCH_BYTES) for requests that came batched, one REPLY each
        for the others. `now`: the turn's clock, for the latency metrics."""
        if not self._replies:
            return []
        frames: list[ClientFrame] = []
        batched: dict[bytes, list[bytes]] = defaultdict(list)
        answered = self.metrics.answered
        for handle, result in self.take_answers():
            kind = type(result).__name__ if isinstance(result, MultiraftError) else "ok"
            answered(handle.op, kind, now - handle.since)
            ok, body = wire.reply_body(result)
            if handle.batched:
                batched[handle.identity].append(wire.pack_reply(handle.request_id, ok, body))
            else:
                rep = wire.Reply(handle.request_id, ok, body)
                frames.append((handle.identity, wire.encode_reply(rep)))
        for identity, packed in batched.items():
            for frame in wire.batch_frames(wire.KIND_REPLIES, packed, REPLY_BATCH_BYTES):
                frames.append((identity, frame))
        return frames

    def take_answers(self) -> list[tuple[Handle, Any]]:
        """The answers so far, as (handle, result) pairs."""
        answers, self._replies = self._replies, []
        return answers

    def forget_sent(self) -> dict[int, list[tuple[int, int]]]:
        sent = self.sent_to
        if sent:
            self.sent_to = defaultdict(list)
        return sent
