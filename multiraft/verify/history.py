"""A verify run's history: one operation per record, as JSON lines.

Each operation is what one worker saw of one call, as Jepsen records it:
`type` "ok" (it happened, with this result), "fail" (it definitely did not
happen: the cluster refused it) or "info" (unknown: a timeout; it may have
taken effect at any time after it started, or never). Times are seconds
since the run began, on the monotonic clock. Values are text, so a history
file can be read and edited by hand and checked again with `multiraft
verify check FILE`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

Kind = Literal["get", "put", "cas", "delete", "add", "read"]
"""Register operations (get, put, cas, delete) and set ones (add, read)."""
Outcome = Literal["ok", "fail", "info"]


@dataclass(frozen=True, slots=True)
class Op:
    process: int
    """The worker that ran it (one operation at a time per worker)."""
    key: str
    """The register's key, or the set's name."""
    f: Kind
    value: Any
    """put: the value written; cas: [expected, new] (None is "absent");
    add: the element; get, delete, read: None."""
    type: Outcome
    result: Any
    """get: the value read (None: absent); cas: whether it swapped; read:
    the elements read, sorted; put, delete, add: None."""
    start: float
    end: float
    """When the call returned (for "info": when the worker gave up on it)."""

    @property
    def unknown(self) -> bool:
        return self.type == "info"


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault the nemesis injected, from `start` until it healed at `end`."""

    name: str
    """kill, pause, partition, split, transfer or move."""
    detail: str
    """What exactly, for a reader: "store 2", "stores 1,3 | 2", "region 7 at b'k5'"."""
    start: float
    end: float


def dump(records: Iterable[Op | Fault], path: Path) -> None:
    """Write `records` to `path`, one JSON object per line."""
    with path.open("w") as out:
        for record in records:
            out.write(json.dumps(asdict(record), separators=(",", ":")) + "\n")


def load(path: Path) -> list[Op]:
    """The operations of a history file (ValueError naming the bad line)."""
    return [r for r in _records(path, Op) if isinstance(r, Op)]


def load_faults(path: Path) -> list[Fault]:
    """The faults of a faults file (ValueError naming the bad line)."""
    return [r for r in _records(path, Fault) if isinstance(r, Fault)]


def _records(path: Path, cls: type[Op] | type[Fault]) -> Iterator[Op | Fault]:
    with path.open() as lines:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield cls(**json.loads(line))
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}:{n}: not a {cls.__name__} record: {e}") from None
