"""The report: the summary line, the verdict table with each failure's
window, and the exit code a script can act on."""

from __future__ import annotations

from rich.console import Console

from multiraft.verify.checker import Verdict, check
from multiraft.verify.history import Fault, Op
from multiraft.verify.report import exit_code, print_report, summary

OPS = [
    Op(0, "a", "put", "[red]x", "ok", None, 0.0, 0.1),
    Op(1, "a", "put", "y", "ok", None, 0.2, 0.3),
    Op(2, "a", "get", None, "ok", "[red]x", 0.4, 0.5),  # stale
    Op(0, "b", "put", "z", "info", None, 0.0, 1.0),
    Op(1, "b", "get", None, "fail", None, 1.1, 1.2),
    Op(2, "s", "add", 1, "ok", None, 0.0, 0.1),
    Op(2, "s", "read", None, "ok", list(range(1, 40)), 0.2, 0.3),
]
FAULTS = [
    Fault("kill", "store 2", 0.35, 0.6),
    Fault("pause", "store 1", 2.0, 3.0),
    Fault("kill", "store 3", 4.0, 5.0),
]


def verdict(key: str, status: str) -> Verdict:
    return Verdict(key, "register", status, 1, "", ())  # type: ignore[arg-type]


def test_the_summary_is_one_line_of_counts() -> None:
    line = summary(OPS, check(OPS), FAULTS)
    assert line == (
        "verify: 7 ops (5 ok, 1 fail, 1 info) on 3 keys: 1 ok, 2 failed, 0 unknown; "
        "faults: kill 2, pause 1"
    )
    assert summary([], [], []) == (
        "verify: 0 ops (0 ok, 0 fail, 0 info) on 0 keys: 0 ok, 0 failed, 0 unknown; faults: none"
    )


def test_the_report_shows_every_verdict_and_each_failing_window() -> None:
    console = Console(record=True, width=200)
    print_report(console, OPS, check(OPS), FAULTS)
    text = console.export_text()
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "fail" in rows["a"] and "ok" in rows["b"] and "fail" in rows["s"]
    assert "unexpected 38 elements (2, 3, 4, ...)" in rows["s"]
    window = text[text.index("a: not linearizable") : text.index("s: unexpected")]
    assert "'y'" in window and "'[red]x'" in window  # values are text, not markup
    assert "200.0" in window and "500.0" in window  # times in ms
    assert "faults on meanwhile: kill store 2" in window
    assert "[1, 2, 3, 4, 5, 6, 7, 8, ... 39 in all]" in text  # a long read, cut short


def test_the_exit_code_passes_only_when_every_key_is_ok() -> None:
    assert exit_code([verdict("a", "ok"), verdict("b", "ok")]) == 0
    assert exit_code([]) == 0
    assert exit_code([verdict("a", "ok"), verdict("b", "fail")]) == 1
    assert exit_code([verdict("a", "unknown"), verdict("b", "fail")]) == 1
    assert exit_code([verdict("a", "ok"), verdict("b", "unknown")]) == 3
