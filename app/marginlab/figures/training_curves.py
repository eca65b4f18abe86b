"""Figures over training time: training curves with the ArcFace Table-3 angle statistics.

Inputs are plain arrays and dicts (no engine classes), so these work with any trainer that can
report step, loss, accuracies and `angles.table3_statistics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from marginlab.figures.style import (
    PALETTE,
    base_layout,
    f32,
    fast_figure,
    subplot_row,
    trace,
)

History = Mapping[str, Sequence[float]] | Sequence[Mapping[str, float]]
STAT_STYLE = {  # ArcFace paper Table 3 names
    "w_ec": ("W-EC: weight ↔ own class centre", "dot"),
    "w_inter": ("W-Inter: weight ↔ nearest weight", "dashdot"),
    "intra": ("Intra: feature ↔ own class centre", "solid"),
    "inter": ("Inter: class centre ↔ nearest centre", "dash"),
}


ACCURACY_STYLE = (("train_acc", "train", "solid"), ("test_acc", "test", "dash"))
STYLE_INK = "#475569"  # legend entries that explain a line style, not a run


def _legend_line(name: str, color: str, dash: str, *, group: str | None = None) -> dict:
    """A legend-only line entry (no data): a run's colour, or what a line style means."""
    return trace(
        "scatter",
        x=f32([]),
        y=f32([]),
        mode="lines",
        name=name,
        legendgroup=group or f"style: {name}",
        line={"color": color, "dash": dash, "width": 2.5},
        hoverinfo="skip",
    )


def history_columns(history: History) -> dict[str, np.ndarray]:
    """Columns (float64 arrays) from either a dict of lists or a list of snapshot-like dicts."""
    if isinstance(history, Mapping):
        return {k: np.asarray(v, dtype=np.float64) for k, v in history.items() if _numeric(v)}
    rows = list(history)
    keys = [k for k in (rows[0] if rows else {}) if _numeric([r.get(k) for r in rows])]
    return {k: np.asarray([r.get(k, np.nan) for r in rows], dtype=np.float64) for k in keys}


def _numeric(values) -> bool:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return arr.ndim == 1


def _finite_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop non-finite points: a diverged run shows as a line that stops (and a note)."""
    n = min(len(x), len(y))
    keep = np.isfinite(x[:n]) & np.isfinite(y[:n])
    return f32(x[:n][keep]), f32(y[:n][keep])


def training_curves_figure(
    history: History | Mapping[str, History],
    *,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """Loss, train/test accuracy and the ArcFace Table-3 angles (degrees) against steps.

    `history` is one run (a dict with a "step" column, or a list of dicts with "step") or
    several runs {name: history}, each in its colour (`colors` by name, else the palette's).
    Several runs: colour says which run, line style which quantity, and the legend says each
    once (a run's entry shows or hides all its lines) instead of runs × quantities entries.
    Non-finite values are left out, and a note says when a run's loss became NaN.
    """
    single = (isinstance(history, Mapping) and "step" in history) or not isinstance(
        history, Mapping
    )
    runs = {"run": history} if single else dict(history)
    panels, refs = subplot_row(["Loss", "Accuracy", "Angles (ArcFace paper, Table 3)"])
    traces: list = []
    notes = []

    def line(panel: int, x, y, name: str, group: str, **style) -> None:
        # One run: no legend groups (plotly stacks a group's entries in a column even in a
        # horizontal legend); several: a run's lines in its group, toggled by its entry.
        xref, yref = refs[panel]
        traces.append(
            trace("scatter", x=x, y=y, mode="lines", name=name,
                  legendgroup=None if single else group, line=style, xaxis=xref, yaxis=yref,
                  showlegend=single)
        )  # fmt: skip

    for r, (name, hist) in enumerate(runs.items()):
        cols = history_columns(hist)
        steps = cols.get("step", np.arange(len(next(iter(cols.values()), []))))
        color = (colors or {}).get(name) or PALETTE[r % len(PALETTE)]
        prefix = "" if single else f"{name}: "
        if "loss" in cols:
            bad = ~np.isfinite(cols["loss"])
            if bad.any():
                notes.append(f"{prefix}loss became NaN/Inf at step {steps[np.argmax(bad)]:g}")
            line(0, *_finite_xy(steps, cols["loss"]), f"{prefix}loss", name, color=color)
        for key, label, dash in ACCURACY_STYLE:
            if key in cols:
                x, y = _finite_xy(steps, cols[key])
                line(1, x, y, f"{prefix}{label} accuracy", name, color=color, dash=dash)
        for k, (key, (label, dash)) in enumerate(STAT_STYLE.items()):
            if key in cols:
                x, y = _finite_xy(steps, np.degrees(cols[key]))
                stat_color = PALETTE[4 + k] if single else color
                line(2, x, y, f"{prefix}{label}", name, color=stat_color, dash=dash)
        if not single:
            traces.append(_legend_line(name, color, "solid", group=name))
    if not single:
        for _key, label, dash in ACCURACY_STYLE:
            traces.append(_legend_line(f"{label} accuracy", STYLE_INK, dash))
        for label, dash in STAT_STYLE.values():
            traces.append(_legend_line(label, STYLE_INK, dash))
    step_title = {"title": {"text": "training step"}}
    for k in range(3):
        panels["xaxis" if k == 0 else f"xaxis{k + 1}"].update(step_title)
    panels["yaxis"]["title"] = {"text": "loss"}
    panels["yaxis2"].update(title={"text": "accuracy"}, range=[0, 1.02], tickformat=".0%")
    panels["yaxis3"]["title"] = {"text": "degrees"}
    subtitle = "; ".join(notes) or (
        "Angles: smaller Intra = tighter classes; smaller W-EC = weights better aligned with "
        "their class centres; larger Inter and W-Inter = classes and weights further apart."
    )
    layout = base_layout(
        title or "Training curves",
        subtitle,
        **panels,
    )
    if max((len(t["x"]) for t in traces), default=0) < 2:
        # Before the second snapshot there is no curve to draw: say so instead of empty axes
        # (hidden, so that their titles cannot crowd the note either).
        for name in [key for key in layout if key[:5] in ("xaxis", "yaxis")]:
            layout[name] = {**layout[name], "visible": False}
        layout["annotations"].append(
            {"text": "No training yet: press Play or Step.", "x": 0.5, "y": 0.5,
             "xref": "paper", "yref": "paper", "showarrow": False, "font": {"size": 15}}
        )  # fmt: skip
    return fast_figure(traces, layout)
