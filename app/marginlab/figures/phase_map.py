"""The (s, m) phase map as a heatmap: one colour per phase, the mean test accuracy and the
seeds' spread written in each cell, every measured number on hover.

Input is the plain dict of experiments.phase_map (cells[i][j] for m_values[i], s_values[j],
each with "outcome", "accuracy", "spread", "p_true", "margin_met", "runs"), so this module
depends on no engine class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from marginlab.figures.style import BAND_GREY, base_layout, f32, fast_figure, trace

# phase_rule.PHASES from the best to the worst, then the cells still to run. Colour-blind-safe
# hues; each cell's text names its phase, so the map reads without colour too.
PHASE_COLORS: dict[str, str] = {
    "works": "#1a9850",
    "margin too large": "#4575b4",
    "underfits": "#fdae61",
    "unstable": "#b07aa1",
    "collapsed": "#4d4d4d",
    "NaN": "#d73027",
    "not run": "#f4f4f4",
}
MARGIN_TITLES: dict[str, str] = {
    "m2": "ArcFace margin m: rad (degrees)",
    "m3": "CosFace margin m (a cosine, no unit)",
    "m1": "multiplicative margin m1 (no unit)",
}


def _tick(margin_name: str, value: float) -> str:
    if margin_name == "m2":
        return f"{value:g} ({math.degrees(value):.0f}°)"
    return f"{value:g}"


def _cell_text(cell: Mapping) -> str:
    if cell.get("outcome", "not run") == "not run":
        return ""
    accuracy, spread = 100 * float(cell["accuracy"]), 50 * float(cell["spread"])
    return f"{cell['outcome']}<br>{accuracy:.0f} % ± {spread:.0f}"


def _hover(cell: Mapping, seeds: int) -> str:
    if cell.get("outcome", "not run") == "not run":
        return "not run yet"
    return (
        f"<b>{cell['outcome']}</b><br>test accuracy {100 * float(cell['accuracy']):.1f} % "
        f"(mean of {cell['runs']} of {seeds} seeds; they differ by "
        f"{100 * float(cell['spread']):.1f} points)<br>"
        f"right class's probability {float(cell['p_true']):.2f}<br>"
        f"margin met by {100 * float(cell['margin_met']):.0f} % of the test images<br>"
        f"worst class recognised on {100 * float(cell['min_recall']):.0f} %<br>"
        f"skipped (non-finite) steps {cell['skipped_steps']}"
    )


def phase_map_figure(
    result: Mapping, *, margin_name: str = "m2", title: str | None = None
) -> go.Figure:
    """Heatmap of a phase-map result: colour = phase, text = mean accuracy ± half the spread
    between seeds; both axes categorical (s and m are not evenly spaced)."""
    s_values: Sequence[float] = result["s_values"]
    m_values: Sequence[float] = result["m_values"]
    phases = list(PHASE_COLORS)
    cells = result["cells"]
    seeds = len(result.get("seeds", ())) or 1
    z = np.array([[phases.index(cell["outcome"]) for cell in row] for row in cells], float)
    n = len(phases)
    # Stepped colour scale: phase k owns [k/n, (k+1)/n] of the normalised z range.
    scale = []
    for k, phase in enumerate(phases):
        scale += [[k / n, PHASE_COLORS[phase]], [(k + 1) / n, PHASE_COLORS[phase]]]
    heatmap = trace(
        "heatmap",
        x=[f"{v:g}" for v in s_values],
        y=[_tick(margin_name, v) for v in m_values],
        z=f32(z + 0.5),
        zmin=0.0,
        zmax=float(n),
        colorscale=scale,
        text=[[_cell_text(cell) for cell in row] for row in cells],
        texttemplate="%{text}",
        customdata=[[_hover(cell, seeds) for cell in row] for row in cells],
        hovertemplate="s = %{x}, m = %{y}<br>%{customdata}<extra></extra>",
        xgap=2,
        ygap=2,
        colorbar={
            "tickvals": [k + 0.5 for k in range(n)],
            "ticktext": phases,
            "title": {"text": "phase"},
        },
    )
    done = sum(cell["outcome"] != "not run" for row in cells for cell in row)
    warmup = result.get("warmup", 0)
    schedule = (
        f"after a {warmup}-step margin warm-up"
        if warmup
        else "without margin warm-up (as in the papers)"
    )
    subtitle = (
        f"{done} of {len(s_values) * len(m_values)} cells · {seeds} seed(s) per cell, "
        f"{result.get('steps', '?')} steps each, {schedule}; text: mean test accuracy ± half "
        "the seeds' spread"
    )
    layout = base_layout(
        title or "Which (s, m) train? Phase map",
        subtitle,
        xaxis={"title": {"text": "scale s (no unit)"}, "type": "category"},
        yaxis={"title": {"text": MARGIN_TITLES.get(margin_name, "margin")}, "type": "category"},
        plot_bgcolor=BAND_GREY,
    )
    return fast_figure([heatmap], layout)
