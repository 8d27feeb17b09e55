"""`multiraft status --watch`: the stores, their regions, leaders and
requests per second, refreshed every second (rich's `Live`)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from multiraft import Client
from multiraft.errors import MultiraftError

INTERVAL = 1.0


class Rates:
    """Requests per second per store, from the counters each store reports
    (its own directly, the others' by gossip, a second old at most)."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[float, int]] = {}

    def update(self, stores: list[dict[str, Any]], now: float) -> dict[int, float | None]:
        rates: dict[int, float | None] = {}
        for s in stores:
            sid, total = s.get("id"), s.get("requests")
            if not isinstance(sid, int) or not isinstance(total, int):
                continue
            seen = self._last.get(sid)
            rates[sid] = None
            if seen is not None and now > seen[0] and total >= seen[1]:
                rates[sid] = (total - seen[1]) / (now - seen[0])
            self._last[sid] = (now, total)
        return rates


def view(st: dict[str, Any], rates: dict[int, float | None]) -> Group:
    table = Table(title=f"multiraft: answered by store {st.get('store_id')} at {st.get('addr')}")
    for column in ("STORE", "ADDR", "STATE", "REGIONS", "LEADERS", "QUIET", "REQUESTS/S"):
        table.add_column(column, justify="left" if column in ("ADDR", "STATE") else "right")
    for s in sorted(st["stores"], key=lambda s: s.get("id", 0)):
        rate = rates.get(s.get("id", 0))
        table.add_row(
            str(s.get("id")),
            str(s.get("addr")),
            str(s.get("state")),
            str(s.get("regions")),
            str(s.get("leaders")),
            str(s.get("quiet", "?")),
            "-" if rate is None else f"{rate:,.0f}",
        )
    regions = st["regions"]
    leaderless = sum(1 for _, leader in regions if leader is None)
    summary = f"{len(regions)} regions, {leaderless} without a leader"
    return Group(table, Text(summary))


def live_status(client: Client, count: int | None = None) -> None:
    """Refresh until Ctrl-C (or `count` views); a failed refresh shows its
    error and the next one tries again."""
    rates = Rates()
    shown = 0
    with Live(Text("asking the cluster..."), auto_refresh=False) as live:
        try:
            while count is None or shown < count:
                started = time.monotonic()
                try:
                    st = client.status()
                    live.update(view(st, rates.update(st["stores"], started)), refresh=True)
                except MultiraftError as e:
                    live.update(Text(f"{type(e).__name__}: {e}"), refresh=True)
                shown += 1
                if count is None or shown < count:
                    time.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))
        except KeyboardInterrupt:
            pass
