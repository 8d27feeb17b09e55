"""A linearizability checker for key-value histories (Wing & Gong search with
memoization, as in Knossos / Porcupine).

Linearizability is local, so each key is checked on its own as a register
with get / put / delete / cas. An operation whose outcome is unknown (the
client got `Timeout`) may have taken effect at any point after it started,
or never.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

ABSENT = None


@dataclass(frozen=True, slots=True)
class Op:
    key: bytes
    kind: str  # "get" | "put" | "delete" | "cas"
    start: float
    end: float  # math.inf when the outcome is unknown
    arg: Any = None  # put: value; cas: (expected, new)
    result: Any = None  # get: value; cas: bool

    @property
    def unknown(self) -> bool:
        return self.end == math.inf


def _step(state: bytes | None, op: Op) -> tuple[bool, bytes | None]:
    """Whether `op` may run on `state`, and the state after it."""
    if op.kind == "get":
        return (op.unknown or op.result == state), state
    if op.kind == "put":
        return True, op.arg
    if op.kind == "delete":
        return True, ABSENT
    expected, new = op.arg
    swapped = state == expected
    if not op.unknown and op.result != swapped:
        return False, state
    return True, (new if swapped else state)


def check_register(ops: list[Op], initial: bytes | None = ABSENT) -> bool:
    """Whether one key's history has a linearization."""
    ops = sorted(ops, key=lambda o: o.start)
    n = len(ops)
    must = sum(1 << i for i, o in enumerate(ops) if not o.unknown)
    seen: set[tuple[int, Any]] = set()
    stack = [(0, initial)]
    while stack:
        done, state = stack.pop()
        if done & must == must:
            return True
        if (done, state) in seen:
            continue
        seen.add((done, state))
        # An op can go next only if it started before every pending op ended.
        horizon = min((o.end for i, o in enumerate(ops) if not done >> i & 1), default=math.inf)
        for i in range(n):
            if done >> i & 1:
                continue
            op = ops[i]
            if op.start > horizon:
                break
            ok, nxt = _step(state, op)
            if ok:
                stack.append((done | 1 << i, nxt))
            if op.unknown:
                # ...or it never took effect at all.
                stack.append((done | 1 << i, state))
    return False


def check_history(ops: list[Op]) -> list[bytes]:
    """The keys whose histories are not linearizable (empty means all are)."""
    by_key: dict[bytes, list[Op]] = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    return [k for k, key_ops in sorted(by_key.items()) if not check_register(key_ops)]
