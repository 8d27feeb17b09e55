"""What a region's Raft entries carry, and what waits in a peer's queues.

A normal entry's data is msgpack `[kind, payload]`:

| kind        | payload                                                        |
| ----------- | -------------------------------------------------------------- |
| WRITES (0)  | `[[op, client, seq, acked, epoch_version, key, a, b], ...]`    |
| SPLIT (1)   | `[epoch_version, split_key, new_region_id, [new_peer_id, ...]]` |
| SPLITS (2)  | `[epoch_version, [[split_key, new_region_id, [new_peer_id, ...]], ...]]` |

`op` is PUT (a = value), DELETE, or CAS (a = expected, b = new; None
means absent). Every command proposed for a region in one store-loop turn
goes into one entry: one Raft append, one fsync, many writes.
A split is an admin command: every replica applies it in the same
transaction as the rest of its batch; new peer ids follow the order of the
parent's peers. SPLITS cuts a region at several keys at once (ascending);
SPLIT, one key, is what stores wrote before, still read. An empty entry
(the leader's no-op at election) carries nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

WRITES = 0
SPLIT = 1
SPLITS = 2

PUT = 1
DELETE = 2
CAS = 3

OPS = {"put": PUT, "delete": DELETE, "cas": CAS}


@dataclass(slots=True)
class WriteCommand:
    op: int
    client: int
    seq: int
    acked: int
    epoch_version: int
    key: bytes
    a: bytes | None = None
    b: bytes | None = None

    def to_wire(self) -> list[Any]:
        return [
            self.op,
            self.client,
            self.seq,
            self.acked,
            self.epoch_version,
            self.key,
            self.a,
            self.b,
        ]


@dataclass(slots=True)
class SplitPart:
    """One cut of a split: the region [key, next cut or end) and its ids."""

    key: bytes
    region_id: int
    peer_ids: list[int]


@dataclass(slots=True)
class SplitCommand:
    epoch_version: int
    parts: list[SplitPart]
    """In ascending key order."""

    def to_wire(self) -> list[Any]:
        return [self.epoch_version, [[p.key, p.region_id, p.peer_ids] for p in self.parts]]


@dataclass(slots=True)
class ReadOp:
    op: str  # "get" or "scan"
    key: bytes = b""
    end: bytes = b""
    limit: int | None = None
    version: int = 0
    """The region's epoch version when the read was accepted: a split before
    it is served would change the range the client continues from."""


def encode_writes(cmds: list[WriteCommand]) -> bytes:
    return msgpack.packb([WRITES, [c.to_wire() for c in cmds]])


def encode_split(cmd: SplitCommand) -> bytes:
    return msgpack.packb([SPLITS, cmd.to_wire()])


def decode_entry(data: bytes) -> tuple[int, Any]:
    """(kind, payload) of a normal entry's data; raises ValueError if corrupt."""
    kind, payload = msgpack.unpackb(data)
    if kind == WRITES:
        return kind, [WriteCommand(*w) for w in payload]
    if kind == SPLIT:
        version, key, region_id, peer_ids = payload
        return SPLITS, SplitCommand(version, [SplitPart(key, region_id, peer_ids)])
    if kind == SPLITS:
        version, parts = payload
        return kind, SplitCommand(version, [SplitPart(*p) for p in parts])
    raise ValueError(f"unknown entry kind {kind}")
