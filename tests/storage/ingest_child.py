"""The victim of the SIGKILL-mid-ingest test.

`python -m tests.storage.ingest_child DIR` ingests the snapshot staged in
DIR by `prepare` (steps 1 and 2 in tiny transactions, then step 3),
printing "begun" once the marker is durable, "commit" after every later
commit, and "done" at the end, so the parent can kill it at a chosen step.
"""

from __future__ import annotations

import os
import sys

from multiraft.raft.types import ConfState, Snapshot, SnapshotMetadata
from multiraft.storage import Engine, PeerStorage, RegionState, WriteBatch, ingest, kv
from multiraft.storage.snapshot import SnapshotHeader

CS = ConfState((1, 2, 3))
PAIRS = [(b"m%05d" % i, b"v%d" % i * 50) for i in range(3000)]
SNAP = SnapshotMetadata(CS, 9, 3)


def prepare(path: str) -> Snapshot:
    """A replica with stale data and log, and a staged snapshot for it."""
    with Engine(path) as engine:
        ps = PeerStorage(engine, 1)
        batch = engine.batch()
        ps.set_region(batch, RegionState(b"old", b"m", b"", CS))
        for i in range(2000):
            kv.put(batch, b"m%05d-stale" % i, b"stale")
        kv.put(batch, b"a", b"outside")
        batch.commit()
        name = "1-2-3.snap"
        w = ingest.StagingWriter(os.path.join(ingest.staging_dir(engine), name))
        for i in range(0, len(PAIRS), 100):
            w.write([b for pair in PAIRS[i : i + 100] for b in pair])
        w.finish()
    header = SnapshotHeader(b"desc", b"m", b"", [], name)
    return Snapshot(header.encode(), SNAP)


def main(path: str) -> None:
    snap = prepare(path)
    with Engine(path) as engine:
        header = ingest.begin(engine, 1, snap)
        print("begun", flush=True)
        write = engine.write

        def write_and_tell(batch: WriteBatch) -> None:
            write(batch)
            print("commit", flush=True)

        engine.write = write_and_tell  # type: ignore[method-assign]
        ingest.replace_data(engine, header, txn_bytes=2000)
        batch = engine.batch()
        ingest.finish(batch, PeerStorage(engine, 1), snap, header)
        batch.commit()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
