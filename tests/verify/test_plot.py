"""The latency plot is a PNG, and without matplotlib the user is told what to install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from multiraft.verify.history import Fault, Op
from multiraft.verify.plot import latency_plot

PNG = b"\x89PNG\r\n\x1a\n"


def test_a_png_is_written(tmp_path: Path) -> None:
    ops = [
        Op(i % 4, f"k{i % 3}", f, "v", t, None, i * 0.01, i * 0.01 + 0.001 * (i % 7))
        for i, (f, t) in enumerate(
            [("get", "ok"), ("put", "ok"), ("cas", "info"), ("delete", "fail"), ("add", "ok")] * 40
        )
    ]
    faults = [Fault("kill", "store 1", 0.2, 0.5), Fault("partition", "1 | 2,3", 1.0, 1.5)]
    path = tmp_path / "latency.png"
    latency_plot(ops, faults, path, title="a test")
    data = path.read_bytes()
    assert data.startswith(PNG)
    assert len(data) > 10_000


def test_an_empty_history_still_plots(tmp_path: Path) -> None:
    latency_plot([], [], tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes().startswith(PNG)


def test_without_matplotlib_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(RuntimeError, match=r"pip install 'multiraft\[verify\]'"):
        latency_plot([], [], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
