"""No answer to a write leaves before its entry is durable on a majority:
on simulated stores whose fsync a failpoint blocks (the shell stuck in its
commit, as on a hung disk), a put waits, and is answered once enough
stores' commits go through."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.simulation import SimCluster, first_write, run_op


@pytest.mark.parametrize("blocked", ["both followers", "the leader and a follower"])
def test_no_write_is_answered_before_a_majority_made_it_durable(
    tmp_path: Path, blocked: str
) -> None:
    cluster = SimCluster(tmp_path, seed=5, stores=3, replicas=3)
    try:
        client, leader = first_write(cluster)
        followers = [s for s in cluster.stores if s != leader]
        stuck = followers if blocked == "both followers" else [leader, followers[0]]
        for sid in stuck:
            cluster.stores[sid].fsync_blocked = True
        client.queue.append(("put", b"k", b"v2"))
        cluster.run(0.8)  # less than an election timeout: the leader stays
        assert client.op is not None, "the put was answered with one store durable"
        assert all(cluster.stores[s].in_fsync is not None for s in stuck)
        cluster.unblock_fsync(stuck[0])  # a second store's commit goes through
        cluster.run(3.0)
        assert client.op is None and client.history[-1].result is None
        assert run_op(cluster, client, "get", b"k", None) == b"v2"
    finally:
        cluster.close()
