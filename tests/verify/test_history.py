"""History files: what is written reads back the same, and a bad line is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from multiraft.verify.checker import check
from multiraft.verify.history import Fault, Op, dump, load, load_faults

OPS = [
    Op(0, "k", "put", "a", "ok", None, 0.5, 0.75),
    Op(1, "k", "cas", ["a", None], "info", None, 1.0, 9.0),
    Op(2, "k", "get", None, "ok", "a", 1.5, 1.625),
    Op(3, "k", "delete", None, "fail", None, 2.0, 2.5),
    Op(0, "s", "add", 7, "ok", None, 3.0, 3.5),
    Op(1, "s", "read", None, "ok", [7], 4.0, 4.5),
]
FAULTS = [Fault("partition", "stores 1,3 | 2", 1.0, 6.0), Fault("kill", "store 2", 7.0, 8.0)]


def test_ops_and_faults_read_back_as_written(tmp_path: Path) -> None:
    dump(OPS, tmp_path / "history.jsonl")
    dump(FAULTS, tmp_path / "faults.jsonl")
    assert load(tmp_path / "history.jsonl") == OPS
    assert load_faults(tmp_path / "faults.jsonl") == FAULTS
    assert check(load(tmp_path / "history.jsonl")) == check(OPS)
    assert [op.unknown for op in OPS] == [False, True, False, False, False, False]


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    dump(OPS[:1], path)
    with path.open("a") as out:
        out.write("\n")  # blank lines are skipped
        out.write('{"process": 1, "key": "k"}\n')
    with pytest.raises(ValueError, match=r"history.jsonl:3: not a Op record"):
        load(path)
    path.write_text("not json\n")
    with pytest.raises(ValueError, match=r"history.jsonl:1: not a Op record"):
        load(path)
    with pytest.raises(ValueError, match=r"history.jsonl:1: not a Fault record"):
        load_faults(path)
