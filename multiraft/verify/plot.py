"""The latency of every operation over the run, with the faults shaded, as
Jepsen's latency-raw plot: where a fault starts, latencies jump and
outcomes turn unknown, and a reader sees whether the cluster recovered."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from multiraft.verify.history import Fault, Op

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

__all__ = ["latency_plot"]

COLOURS = {"ok": "#1f77b4", "fail": "#d62728", "info": "#ff9f1c"}
MARKERS = {"get": "o", "put": "^", "cas": "s", "delete": "x", "add": "P", "read": "D"}
FAULT_COLOURS = ["#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#2ca02c"]
FLOOR_MS = 0.001
"""Latencies are drawn no lower than this (a log scale has no zero)."""


def latency_plot(ops: Sequence[Op], faults: Sequence[Fault], path: Path, title: str = "") -> None:
    """Write a PNG to `path`: x is when each operation started (s), y its
    latency (ms, log scale); colour is its outcome, shape its kind; each
    fault's time is shaded, one colour per kind of fault."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        msg = "the latency plot needs matplotlib: pip install 'multiraft[verify]'"
        raise RuntimeError(msg) from None
    figure = Figure(figsize=(11, 5), dpi=100)
    FigureCanvasAgg(figure)  # draws on it: no pyplot, no global backend
    ax = figure.add_subplot()
    handles = _scatter(ax, ops) + _shade(ax, faults)
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title(title or "latency")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    figure.savefig(path, bbox_inches="tight")


def _scatter(ax: Axes, ops: Sequence[Op]) -> list[Artist]:
    """The operations as points; legend entries for outcomes and kinds."""
    from matplotlib.lines import Line2D

    kinds = list(dict.fromkeys(op.f for op in ops))
    for outcome, colour in COLOURS.items():
        for kind in kinds:
            mine = [op for op in ops if op.type == outcome and op.f == kind]
            if mine:
                x = [op.start for op in mine]
                y = [max((op.end - op.start) * 1000, FLOOR_MS) for op in mine]
                ax.scatter(x, y, s=6, c=colour, marker=MARKERS.get(kind, "."), linewidths=0.5)
    handles: list[Artist] = [
        Line2D([], [], color=colour, marker="o", linestyle="", label=outcome)
        for outcome, colour in COLOURS.items()
    ]
    return handles + [
        Line2D([], [], color="black", marker=MARKERS.get(kind, "."), linestyle="", label=kind)
        for kind in kinds
    ]


def _shade(ax: Axes, faults: Sequence[Fault]) -> list[Artist]:
    """Each fault's time shaded; a legend entry per kind of fault."""
    from matplotlib.patches import Patch

    names = list(dict.fromkeys(f.name for f in faults))
    colour = {name: FAULT_COLOURS[i % len(FAULT_COLOURS)] for i, name in enumerate(names)}
    for f in faults:
        ax.axvspan(f.start, f.end, color=colour[f.name], alpha=0.15, linewidth=0)
    return [Patch(color=colour[name], alpha=0.3, label=name) for name in names]
