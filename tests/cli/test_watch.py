from __future__ import annotations

from multiraft.cli.watch import Rates

from .conftest import Run


def test_rates_are_requests_per_second_between_two_views() -> None:
    rates = Rates()
    stores = [{"id": 1, "requests": 100}, {"id": 2, "requests": None}]
    assert rates.update(stores, 10.0) == {1: None}
    assert rates.update([{"id": 1, "requests": 400}], 12.0) == {1: 150.0}
    # A restarted store counts from zero again: no negative rate.
    assert rates.update([{"id": 1, "requests": 5}], 13.0) == {1: None}


def test_status_watch_shows_a_live_table(run: Run) -> None:
    out = run("status", "--watch", "--count", "2")
    assert out.exit_code == 0, out.output
    for column in ("STORE", "STATE", "REGIONS", "LEADERS", "QUIET", "REQUESTS/S"):
        assert column in out.output
    assert "without a leader" in out.output
