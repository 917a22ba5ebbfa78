"""Geometry of the console's charts, drawn as inline SVG by the templates (console/_charts.html).

What: `rate_bars` (one horizontal bar per group: the rate, its 95 % interval as an error bar, the
target as a dashed line) and `trend` (the rate by month with its interval and the target line).
Why inline SVG computed here: a chart costs microseconds instead of matplotlib's ~0.5 s per figure,
needs no file and no request of its own, scales on a phone, and every label goes through the
template's escaping like any other text (a group named `<script>` is shown, never run). The PNG
charts of `ohbot report --out` (bot/awareness/report.py) stay what the HTML summary download holds.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LABEL_WIDTH = 180  # px for the group labels left of the bars
PLOT_WIDTH = 420
ROW_HEIGHT = 24
MAX_BARS = 40


@dataclass(frozen=True)
class Bar:
    label: str
    y: float
    width: float  # of the bar, px
    low: float  # interval ends, px from the plot's left edge
    high: float
    text: str  # the rate as shown, "87.3%"
    kind: str  # overall | ranked | small


def _x(rate: float | None) -> float:
    """A rate in [0, 1] as px from the plot's left edge."""
    return round(max(0.0, min(1.0, rate or 0.0)) * PLOT_WIDTH, 1)


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def block_rate(block: Mapping[str, Any]) -> float | None:
    """The rate a block's status is judged on: the weighted rate when the report is weighted."""
    return block["weighted_rate"] if block.get("weighted_rate") is not None else block.get("rate")


def rate_bars(rows: Sequence[tuple[str, Mapping[str, Any], str]], target: float,
              ci_keys: tuple[str, str] = ("ci_low", "ci_high")) -> dict[str, Any]:
    """Bars for (label, block, kind) rows (at most MAX_BARS): geometry in px for the template."""
    bars = []
    for n, (label, block, kind) in enumerate(rows[:MAX_BARS]):
        rate = block_rate(block)
        bars.append(Bar(label, n * ROW_HEIGHT + 8, _x(rate), _x(block.get(ci_keys[0])), _x(block.get(ci_keys[1])),
                        _pct(rate), kind))
    height = len(bars) * ROW_HEIGHT + 36
    return {"bars": bars, "label_width": LABEL_WIDTH, "plot_width": PLOT_WIDTH, "width": LABEL_WIDTH + PLOT_WIDTH + 70,
            "height": height, "target_x": _x(target), "target_text": _pct(target), "axis_y": height - 22,
            "ticks": [(_x(t / 100), f"{t}%") for t in range(0, 101, 20)], "row_height": ROW_HEIGHT}


def trend(months: Sequence[Mapping[str, Any]], target: float,
          ci_keys: tuple[str, str] = ("ci_low", "ci_high")) -> dict[str, Any]:
    """Points (month, rate, interval) in px: x by month order, y by rate (100 % at the top)."""
    height, top, plot_h, left = 240, 16, 180, 48
    step = PLOT_WIDTH / max(1, len(months) - 1) if len(months) > 1 else 0

    def y(rate: float | None) -> float:
        return round(top + plot_h * (1 - max(0.0, min(1.0, rate or 0.0))), 1)

    points = []
    for n, m in enumerate(months):
        x = round(left + (n * step if len(months) > 1 else PLOT_WIDTH / 2), 1)
        points.append({"x": x, "y": y(block_rate(m)), "low": y(m.get(ci_keys[0])), "high": y(m.get(ci_keys[1])),
                       "month": str(m["month"]), "text": _pct(block_rate(m)), "n": m["n"]})
    return {"points": points, "path": " ".join(f"{p['x']},{p['y']}" for p in points), "width": left + PLOT_WIDTH + 40,
            "height": height, "left": left, "right": left + PLOT_WIDTH, "target_y": y(target),
            "target_text": _pct(target), "bottom": top + plot_h,
            "ticks": [(y(t / 100), f"{t}%") for t in range(0, 101, 25)]}
