"""How a benchmark shows itself: a progress bar on stderr while it runs
(stdout stays clean for --json) and a table of the result at the end."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Self

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

PLAIN_EVERY = 2.0
"""Seconds between progress lines when stderr is not a terminal."""


class ProgressView:
    """Ops and ops/s so far; a live bar on a terminal, a line every few
    seconds otherwise (logs, CI)."""

    def __init__(self, total_s: float | None, total_ops: int | None, quiet: bool = False) -> None:
        self.console = Console(stderr=True)
        self.quiet = quiet
        self.total_ops = total_ops
        self.total = float(total_ops) if total_ops is not None else (total_s or 0.0)
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._last_line = 0.0

    def __enter__(self) -> Self:
        if not self.quiet and self.console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]bench"),
                BarColumn(),
                TextColumn("{task.fields[ops]:>10,} ops  {task.fields[rate]:>10,.0f} ops/s"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("load", total=self.total or None, ops=0, rate=0.0)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)

    def log(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[dim]{message}[/dim]", highlight=False)

    def update(self, ops: int, elapsed: float) -> None:
        rate = ops / elapsed if elapsed > 0 else 0.0
        if self._bar is not None and self._task is not None:
            done = ops if self.total_ops is not None else min(elapsed, self.total)
            self._bar.update(self._task, completed=done, ops=ops, rate=rate)
        elif not self.quiet and time.monotonic() - self._last_line >= PLAIN_EVERY and ops:
            self._last_line = time.monotonic()
            self.console.print(f"{elapsed:6.1f} s  {ops:>10,} ops  {rate:>10,.0f} ops/s")


def render(result: dict[str, Any], console: Console | None = None) -> None:
    """The result as two tables: the load, and the cluster's view."""
    console = console or Console()
    lat = result["latency_ms"]
    load = Table(title=f"multiraft bench: {result['workload']}", title_justify="left")
    for col in ("ops", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors"):
        load.add_column(col, justify="right")
    errors = ", ".join(f"{k}={v}" for k, v in result["errors"].items()) or "none"
    load.add_row(
        f"{result['ops']:,}",
        f"{result['ops_per_sec']:,.0f}",
        f"{lat['p50']:.2f}",
        f"{lat['p99']:.2f}",
        f"{lat['p999']:.2f}",
        f"{lat['max']:.2f}",
        errors,
    )
    console.print(load)
    console.print(_setup_line(result), highlight=False)
    leaders = ", ".join(f"store {s}: {n}" for s, n in result["leaders_per_store"].items())
    console.print(f"cluster: {result['regions']} regions; leaders {leaders}", highlight=False)


def _setup_line(r: dict[str, Any]) -> str:
    extra = ""
    if "rate" in r:
        extra += f", paced at {r['rate']:,.0f} ops/s"
    if "read_ratio" in r:
        extra += f", read ratio {r['read_ratio']}"
    if "cas_misses" in r:
        extra += f", cas misses {r['cas_misses']:,}"
    return (
        f"{r['clients']} requests in flight from {r['processes']} processes, "
        f"{r['value_size']}-byte values, "
        f"{r['keys']:,} keys ({r['distribution']}){extra}, {r['duration_s']:.1f} s measured "
        f"after {r['warmup_s']} s warmup; load generator CPU {r['client_cpu']:.2f} cores "
        f"of {r['cpu_count']}"
    )
