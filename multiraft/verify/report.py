"""What a verify run tells its user: one summary line, a table of verdicts
(each failing key's window under it, as Jepsen prints one), an exit code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from multiraft.verify.checker import Verdict
from multiraft.verify.history import Fault, Op

__all__ = ["exit_code", "print_report", "summary"]

STYLES = {"ok": "green", "fail": "bold red", "unknown": "yellow", "info": "yellow"}
ELEMENTS_SHOWN = 8
"""A set read's elements shown in a window; the rest are counted."""


def summary(ops: Sequence[Op], verdicts: Sequence[Verdict], faults: Sequence[Fault]) -> str:
    """One line: `verify: 12,345 ops (11,900 ok, 120 fail, 325 info) on 16
    keys: 15 ok, 1 failed, 0 unknown; faults: kill 4, pause 3`."""
    types = Counter(op.type for op in ops)
    statuses = Counter(v.status for v in verdicts)
    kinds = ", ".join(f"{name} {n}" for name, n in Counter(f.name for f in faults).most_common())
    keys = "key" if len(verdicts) == 1 else "keys"
    return (
        f"verify: {len(ops):,} ops ({types['ok']:,} ok, {types['fail']:,} fail, "
        f"{types['info']:,} info) on {len(verdicts):,} {keys}: {statuses['ok']:,} ok, "
        f"{statuses['fail']:,} failed, {statuses['unknown']:,} unknown; faults: {kinds or 'none'}"
    )


def print_report(
    console: Console, ops: Sequence[Op], verdicts: Sequence[Verdict], faults: Sequence[Fault]
) -> None:
    """The verdict of every key, then each failing key's window with the
    faults that were on while it ran."""
    table = Table(title="verdicts", title_justify="left")
    for column in ("key", "workload", "ops", "status", "reason"):
        table.add_column(column, justify="right" if column == "ops" else "left")
    for v in verdicts:
        status = Text(v.status, style=STYLES[v.status])
        table.add_row(Text(v.key), v.workload, f"{v.ops:,}", status, Text(v.reason))
    console.print(table)
    for v in verdicts:
        if v.status == "fail" and v.window:
            console.print(_window(v, faults))


def exit_code(verdicts: Sequence[Verdict]) -> int:
    """0 if every key checked out; 1 if any failed; 3 if none failed but
    the checker could not tell for some (it ran out of budget), which is not
    a pass: rerun `multiraft verify check` with a larger --budget. (2 is a
    usage error, as for every command.)"""
    statuses = {v.status for v in verdicts}
    if "fail" in statuses:
        return 1
    return 3 if "unknown" in statuses else 0


def _window(verdict: Verdict, faults: Sequence[Fault]) -> Table:
    start = min(op.start for op in verdict.window)
    end = max(op.end for op in verdict.window)
    during = [f"{f.name} {f.detail}" for f in faults if f.start <= end and f.end >= start]
    table = Table(
        title=Text(f"{verdict.key}: {verdict.reason}"),
        title_justify="left",
        caption=Text("faults on meanwhile: " + ("; ".join(during) or "none")),
        caption_justify="left",
    )
    for column in ("process", "f", "value", "result", "type", "start ms", "end ms"):
        table.add_column(
            column, justify="left" if column in ("f", "value", "result", "type") else "right"
        )
    for op in verdict.window:
        table.add_row(
            str(op.process),
            op.f,
            _cell(op.value) if op.f in ("put", "cas", "add") else "",
            _cell(op.result) if op.f in ("get", "cas", "read") and op.type == "ok" else "",
            Text(op.type, style=STYLES.get(op.type, "")),
            f"{op.start * 1000:,.1f}",
            f"{op.end * 1000:,.1f}",
        )
    return table


def _cell(value: Any) -> Text:
    if isinstance(value, list) and len(value) > ELEMENTS_SHOWN:
        shown = ", ".join(map(repr, value[:ELEMENTS_SHOWN]))
        return Text(f"[{shown}, ... {len(value):,} in all]")
    return Text(repr(value))
