"""Option types shared by the commands."""

from __future__ import annotations

import click
import pytest

from multiraft.cli.common import Duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10", 10.0), ("0.5", 0.5), ("500ms", 0.5), ("10s", 10.0), ("30m", 1800.0), ("1h", 3600.0)],
)
def test_durations_take_seconds_or_a_unit(text: str, seconds: float) -> None:
    assert Duration().convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["", "ten", "10x", "-1", "0s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(click.BadParameter):
        Duration().convert(text, None, None)
