"""The writer of the crash test, and the model it is checked against.

`python -m tests.storage.crash_child DIR REGIONS` resumes from the batch
counter on disk and commits batch after batch, printing each batch number
once its commit returned. Batch n's writes are a pure function of n and the
state before it (`plan`), so the parent can replay them on `Model`.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field

from multiraft.raft.types import Entry, HardState
from multiraft.storage import Engine, PeerStorage, kv

COUNTER_KEY = b"counter"


@dataclass(frozen=True)
class RegionOp:
    region_id: int
    n_entries: int
    compact: bool
    delete_slot: int


def plan(n: int, regions: int) -> list[RegionOp]:
    """What batch n does: which regions get how many entries, and more."""
    rng = random.Random(n)
    touched = rng.sample(range(1, regions + 1), rng.randint(1, 8))
    return [RegionOp(r, rng.randint(1, 3), rng.random() < 0.15, rng.randrange(5)) for r in touched]


def entry_data(n: int, region_id: int, index: int) -> bytes:
    return b"%d:%d:%d" % (n, region_id, index)


def slot_key(region_id: int, slot: int) -> bytes:
    return b"r%03d/%d" % (region_id, slot)


@dataclass
class RegionModel:
    """What a region must look like on disk after the batches so far."""

    truncated: int = 0
    truncated_term: int = 0
    entries: list[Entry] = field(default_factory=list)
    hard_state: HardState = field(default_factory=HardState)
    applied: int = 0
    data: dict[bytes, bytes] = field(default_factory=dict)

    @property
    def last(self) -> int:
        return self.entries[-1].index if self.entries else self.truncated


class Model:
    def __init__(self, regions: int) -> None:
        self.regions = {r: RegionModel() for r in range(1, regions + 1)}
        self.n = 0

    def advance(self, to: int) -> None:
        while self.n < to:
            self.n += 1
            for op in plan(self.n, len(self.regions)):
                self._apply(self.n, op)

    def _apply(self, n: int, op: RegionOp) -> None:
        m = self.regions[op.region_id]
        start = m.last + 1
        term = 1 + n // 50
        m.entries += [
            Entry(term, i, data=entry_data(n, op.region_id, i))
            for i in range(start, start + op.n_entries)
        ]
        m.hard_state = HardState(term, op.region_id % 3, m.last)
        m.applied = m.last
        m.data[slot_key(op.region_id, n % 5)] = b"%d" % n
        m.data.pop(slot_key(op.region_id, op.delete_slot), None)
        if op.compact and len(m.entries) >= 2:
            m.truncated, m.truncated_term = m.entries[-2].index, m.entries[-2].term
            m.entries = m.entries[-1:]


def write_batch(engine: Engine, storages: dict[int, PeerStorage], n: int) -> None:
    """Batch n on real storage, mirroring `Model._apply`."""
    batch = engine.batch()
    for op in plan(n, len(storages)):
        ps = storages[op.region_id]
        start = ps.last_index() + 1
        term = 1 + n // 50
        last = start + op.n_entries - 1
        ents = [Entry(term, i, data=entry_data(n, op.region_id, i)) for i in range(start, last + 1)]
        ps.append(batch, ents)
        ps.set_hard_state(batch, HardState(term, op.region_id % 3, last))
        ps.set_applied(batch, last)
        kv.put(batch, slot_key(op.region_id, n % 5), b"%d" % n)
        kv.delete(batch, slot_key(op.region_id, op.delete_slot))
        if op.compact and last - 1 >= ps.first_index():
            ps.compact(batch, last - 1)
    kv.put(batch, COUNTER_KEY, b"%d" % n)
    batch.commit()


def main(path: str, regions: int) -> None:
    engine = Engine(path, map_size=1 << 20)
    storages = {r: PeerStorage(engine, r) for r in range(1, regions + 1)}
    n = int(kv.get(engine, COUNTER_KEY) or b"0")
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        n += 1
        write_batch(engine, storages, n)
        sys.stdout.write(f"{n}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
