"""The store's own durable state: the id allocator."""

from __future__ import annotations

from pathlib import Path

from multiraft.store.meta import ID_BITS, ID_BLOCK, open_data_dir


def test_ids_stay_unique_across_restarts_with_one_write_per_block(tmp_path: Path) -> None:
    cluster = {1: "127.0.0.1:1"}
    engine, meta = open_data_dir(str(tmp_path), 1, cluster, 1, sync=False)
    first = meta.alloc_ids(engine, 3)
    durable = meta.next_id
    more = [i for _ in range(10) for i in meta.alloc_ids(engine, 4)]
    assert meta.next_id == durable, "handed out of the reserved block: nothing written"
    engine.close()
    engine, meta = open_data_dir(str(tmp_path), 1, None, 1, sync=False)
    try:
        after = meta.alloc_ids(engine, ID_BLOCK + 1)  # more than a block at once
        ids = first + more + after
        assert len(set(ids)) == len(ids) and min(after) > max(more)
        assert all(i >> ID_BITS == 1 for i in ids)
    finally:
        engine.close()
