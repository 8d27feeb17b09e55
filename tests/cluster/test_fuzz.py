"""bench/fuzz.py at a small count: malformed frames from untrusted, plain,
client and store keys at a secure cluster under load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).parents[2] / "bench" / "fuzz.py"


@pytest.mark.slow
def test_malformed_frames_crash_nothing_and_lose_no_acknowledged_write() -> None:
    out = subprocess.run(
        [sys.executable, str(FUZZ), "--frames", "40000", "--json", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode in (0, 1), out.stderr[-3000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["crashes"] == 0, result
    assert result["lost_or_changed"] == 0, result
    assert result["acked_during_fuzz"] > 0, result
    assert result["handed_to_zeromq"] > 10_000, result  # the trusted senders got through
    for sid, before in result["rss_kb_before"].items():
        assert result["rss_kb_after"][sid] < before + 200_000, result  # bounded, in KiB
    assert out.returncode == 0
