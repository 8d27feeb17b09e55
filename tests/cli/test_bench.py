"""`multiraft bench`: the workload generators and histogram merging, and one
short real run against its own local cluster."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter

import pytest

from multiraft.bench.histogram import Latencies
from multiraft.bench.runner import BenchConfig
from multiraft.bench.worker import Pacer, preload_value
from multiraft.bench.workload import KeyChooser, OpMix, key_of, split_keys

# ---- workload generators ----------------------------------------------------


def test_keys_sort_in_numeric_order() -> None:
    keys = [key_of(i) for i in (0, 9, 10, 99, 100, 123_456)]
    assert keys == sorted(keys)
    assert len({len(k) for k in keys}) == 1


def test_split_keys_cut_the_key_space_evenly() -> None:
    assert split_keys(100, 4) == [key_of(25), key_of(50), key_of(75)]
    assert split_keys(100, 1) == []
    assert len(split_keys(1000, 256)) == 255
    assert split_keys(3, 8) == [key_of(1), key_of(2)]  # no empty or duplicate regions


def test_uniform_keys_cover_the_range_evenly() -> None:
    chooser = KeyChooser(10, "uniform", seed=1)
    counts = Counter(chooser.index() for _ in range(20_000))
    assert set(counts) == set(range(10))
    assert max(counts.values()) < 1.2 * min(counts.values())


def test_zipf_is_skewed_and_scrambled_over_the_key_space() -> None:
    n = 10_000
    chooser = KeyChooser(n, "zipf", seed=2)
    ranks = Counter(chooser.rank() for _ in range(50_000))
    assert ranks.most_common(1)[0][0] == 0
    assert ranks[0] > ranks[1] > ranks[9] > ranks[999]
    top_1pct = sum(c for r, c in ranks.items() if r < n // 100)
    assert top_1pct > 0.4 * 50_000
    hot = [KeyChooser(n, "zipf", seed=s).index() for s in range(200)]
    assert max(hot) > n // 2  # hot keys are not all at the start of the key space
    assert all(0 <= i < n for i in hot)


def test_zipf_scramble_is_a_permutation() -> None:
    n = 1000
    chooser = KeyChooser(n, "zipf", seed=3)
    chooser.rank = iter(range(n)).__next__  # type: ignore[method-assign]
    assert sorted(chooser.index() for _ in range(n)) == list(range(n))


def test_same_seed_same_keys() -> None:
    a, b = KeyChooser(1000, "zipf", seed=7), KeyChooser(1000, "zipf", seed=7)
    assert [a.key() for _ in range(50)] == [b.key() for _ in range(50)]


def test_op_mix() -> None:
    rng = random.Random(4)
    mixed = Counter(OpMix("mixed", 0.9).next_op(rng) for _ in range(10_000))
    assert 0.87 < mixed["get"] / 10_000 < 0.93
    assert {OpMix("put").next_op(rng), OpMix("scan").next_op(rng)} == {"put", "scan"}
    assert not OpMix("put").needs_preload and OpMix("cas").needs_preload
    with pytest.raises(ValueError):
        OpMix("nope")
    with pytest.raises(ValueError):
        KeyChooser(10, "pareto")


def test_preload_values_have_the_asked_size() -> None:
    assert {len(preload_value(i, 100)) for i in (0, 7, 99_999)} == {100}
    assert preload_value(1, 100) != preload_value(2, 100)
    assert preload_value(5, 0) == b""


def test_clients_and_ops_are_shared_over_processes() -> None:
    specs = BenchConfig(clients=10, processes=3, ops=100, duration=None).worker_specs(["a:1"])
    assert [s.clients for s in specs] == [4, 3, 3]
    assert sum(s.ops or 0 for s in specs) == 100
    assert len({s.seed for s in specs}) == 3
    assert len(BenchConfig(clients=2, processes=8).worker_specs(["a:1"])) == 2


def test_without_processes_given_each_takes_512_in_flight_or_20000_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    counts = [BenchConfig(clients=c).generator_processes() for c in (1, 256, 512, 513)]
    assert counts == [1, 1, 1, 2]
    assert BenchConfig(clients=4096).generator_processes() == 2
    assert BenchConfig(clients=4096, processes=3).generator_processes() == 3
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert BenchConfig(clients=4096).generator_processes() == 8
    # Paced, the rate decides: in flight is rate x latency, not --clients.
    assert BenchConfig(clients=4096, rate=19_000.0).generator_processes() == 1
    assert BenchConfig(clients=64, rate=50_000.0).generator_processes() == 3


def test_a_rate_is_shared_like_the_clients() -> None:
    specs = BenchConfig(clients=10, processes=3, rate=1000.0).worker_specs(["a:1"])
    assert [s.rate for s in specs] == pytest.approx([400, 300, 300])
    assert all(s.rate is None for s in BenchConfig(clients=10).worker_specs(["a:1"]))


def test_pacer_spaces_start_times_one_interval_apart() -> None:
    pacer = Pacer(rate=200.0, t0=10.0)
    assert [pacer.slot() for _ in range(4)] == pytest.approx([10.0, 10.005, 10.01, 10.015])


# ---- histograms ---------------------------------------------------------------


def test_histogram_merge_is_exact_over_parts() -> None:
    parts = [Latencies() for _ in range(3)]
    for i in range(1, 3001):
        parts[i % 3].record(i / 1e6 * 1000)  # 1..3000 ms
    merged = Latencies.merge([parts[0].encode(), parts[1], parts[2].encode()])
    assert merged.count == 3000
    s = merged.summary_ms()
    assert s["p50"] == pytest.approx(1500, rel=0.01)
    assert s["p99"] == pytest.approx(2970, rel=0.01)
    assert s["p999"] == pytest.approx(2997, rel=0.01)
    assert s["max"] == pytest.approx(3000, rel=0.01)


def test_empty_histograms() -> None:
    assert Latencies.merge([Latencies().encode(), Latencies()]).summary_ms() == {
        "p50": 0.0,
        "p99": 0.0,
        "p999": 0.0,
        "max": 0.0,
    }
    one = Latencies()
    one.record(1e9)  # clamped, not an error
    assert one.count == 1


# ---- a real run -------------------------------------------------------------------

RUN_LIMIT = 150.0
"""About 6 s on a 2-core machine (not `slow`); the bound is for a stuck run."""


def test_bench_json_on_its_own_local_cluster() -> None:
    cmd = [sys.executable, "-m", "multiraft.cli.main", "bench", "--duration", "2", "--regions", "2"]
    cmd += ["--clients", "8", "--rate", "400", "--json"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=RUN_LIMIT)
    finally:
        _stop(proc)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    lines = out.decode().splitlines()
    assert len(lines) == 1, out
    result = json.loads(lines[0])
    assert result["workload"] == "put"
    assert result["ops"] > 0 and result["ops_per_sec"] > 0
    assert set(result["latency_ms"]) == {"p50", "p99", "p999", "max"}
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]
    assert (
        result["latency_ms"]["p99"] <= result["latency_ms"]["p999"] <= result["latency_ms"]["max"]
    )
    assert result["errors"] == {}
    assert result["regions"] == 2 and result["clients"] == 8
    assert result["value_size"] == 100 and result["duration_s"] == pytest.approx(2, abs=0.5)
    assert result["client_cpu"] >= 0
    assert sum(result["leaders_per_store"].values()) == 2
    assert {"processes", "cpu_count", "keys"} <= set(result)
    assert result["rate"] == 400 and result["ops_per_sec"] <= 400 * 1.05


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets the bench stop its stores; then kill whatever is left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
