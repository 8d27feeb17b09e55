"""The assertion of tests that record a history against real stores: every
key's history is linearizable, or the test fails with the checker's report
(each failing key's window), as `multiraft verify` would print it."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console

from multiraft.verify.checker import check
from multiraft.verify.history import Op
from multiraft.verify.report import print_report, summary


def assert_linearizable(ops: Sequence[Op], what: str = "history") -> None:
    """Every key of `ops` checks out ("unknown", out of budget, does not)."""
    verdicts = check(ops)
    if all(v.status == "ok" for v in verdicts):
        return
    console = Console(file=io.StringIO(), record=True, width=160)
    print_report(console, ops, verdicts, [])
    # An AssertionError, not pytest.fail: tests.store.test_simulation's
    # worker processes count those per seed.
    raise AssertionError(
        f"{what} not linearizable: {summary(ops, verdicts, [])}\n{console.export_text()}"
    )
