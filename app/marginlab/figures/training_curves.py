"""Figures over training time and over hyper-parameters: training curves with the ArcFace
Table-3 angle statistics, and the (s, m) phase map with its resumable, cached computation.

Inputs are plain arrays and dicts (no engine classes), so these work with any trainer that can
report step, loss, accuracies and `angles.table3_statistics`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from marginlab.figures.style import (
    BAND_GREY,
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
    history: History | Mapping[str, History], *, title: str | None = None
) -> go.Figure:
    """Loss, train/test accuracy and the ArcFace Table-3 angles (degrees) against steps.

    `history` is one run (a dict with a "step" column, or a list of dicts with "step") or
    several runs {name: history}, drawn in the class palette's colours. Non-finite values are
    left out, and a note says when a run's loss became NaN.
    """
    single = (isinstance(history, Mapping) and "step" in history) or not isinstance(
        history, Mapping
    )
    runs = {"run": history} if single else dict(history)
    panels, refs = subplot_row(["Loss", "Accuracy", "Angles (ArcFace paper, Table 3)"])
    traces: list = []
    notes = []

    def line(panel: int, x, y, name: str, group: str, **style) -> None:
        xref, yref = refs[panel]
        traces.append(
            trace("scatter", x=x, y=y, mode="lines", name=name, legendgroup=group,
                  line=style, xaxis=xref, yaxis=yref)
        )  # fmt: skip

    for r, (name, hist) in enumerate(runs.items()):
        cols = history_columns(hist)
        steps = cols.get("step", np.arange(len(next(iter(cols.values()), []))))
        color = PALETTE[r % len(PALETTE)]
        prefix = "" if single else f"{name}: "
        if "loss" in cols:
            bad = ~np.isfinite(cols["loss"])
            if bad.any():
                notes.append(f"{prefix}loss became NaN/Inf at step {steps[np.argmax(bad)]:g}")
            line(0, *_finite_xy(steps, cols["loss"]), f"{prefix}loss", name, color=color)
        for key, label, dash in (("train_acc", "train", "solid"), ("test_acc", "test", "dash")):
            if key in cols:
                x, y = _finite_xy(steps, cols[key])
                line(1, x, y, f"{prefix}{label} accuracy", name, color=color, dash=dash)
        for k, (key, (label, dash)) in enumerate(STAT_STYLE.items()):
            if key in cols:
                x, y = _finite_xy(steps, np.degrees(cols[key]))
                stat_color = PALETTE[4 + k] if single else color
                line(2, x, y, f"{prefix}{label}", name, color=stat_color, dash=dash)
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
        legend={"orientation": "h", "y": -0.22},
        margin={"l": 60, "r": 20, "t": 110, "b": 55},  # room for the panel titles
        **panels,
    )
    return fast_figure(traces, layout)


# ---------------------------------------------------------------- (s, m) phase map

OUTCOMES = ("ok", "collapsed", "nan", "not run")


def _outcome(cell: Mapping, collapse_below: float) -> str:
    acc = cell.get("accuracy")
    if cell.get("nan_seen") or acc is None or not math.isfinite(float(acc)):
        return "nan"
    if cell.get("collapsed") or float(acc) <= collapse_below:
        return "collapsed"
    return "ok"


def _same_grid(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and bool(np.allclose(np.asarray(a, float), np.asarray(b, float)))


def _load_cache(path: Path | None, s_values, m_values, key: str | None) -> dict | None:
    if path is None or not path.exists():
        return None
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a damaged cache is recomputed, never trusted
    if not (
        _same_grid(cached.get("s_values", []), s_values)
        and _same_grid(cached.get("m_values", []), m_values)
        and cached.get("key") == key
    ):
        return None
    return cached


def _save(path: Path, result: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)  # atomic: a crash mid-write leaves the old cache intact


def compute_phase_map(
    train_fn: Callable[[float, float], Mapping],
    s_values: Sequence[float],
    m_values: Sequence[float],
    *,
    cache_path: str | os.PathLike | None = None,
    progress: Callable[[int, int, float, float], None] | None = None,
    key: str | None = None,
    collapse_below: float = 0.2,
) -> dict:
    """Train once per (s, m) cell and record the outcome; resumable through a JSON cache.

    `train_fn(s, m)` returns a dict with "accuracy" (0–1) and "nan_seen" (bool), optionally
    "collapsed" (bool). A cell is "nan" if NaN was seen, "collapsed" if accuracy ≤
    `collapse_below` (e.g. 2× chance for 10 classes), else "ok". The result is saved after
    EVERY cell, so an interrupted sweep resumes where it stopped; a cache whose grid (or `key`,
    e.g. a config hash) differs is ignored. `progress(done, total, s, m)` after each cell.
    Result: {"s_values", "m_values", "key", "accuracy"[m][s], "nan_seen"[m][s], "outcome"[m][s]}
    (JSON-friendly: None for cells not run or without a finite accuracy).
    """
    s_values = [float(v) for v in s_values]
    m_values = [float(v) for v in m_values]
    path = Path(cache_path) if cache_path is not None else None
    result = _load_cache(path, s_values, m_values, key) or {
        "s_values": s_values,
        "m_values": m_values,
        "key": key,
        "accuracy": [[None] * len(s_values) for _ in m_values],
        "nan_seen": [[None] * len(s_values) for _ in m_values],
        "outcome": [["not run"] * len(s_values) for _ in m_values],
    }
    total = len(s_values) * len(m_values)
    done = sum(o != "not run" for row in result["outcome"] for o in row)
    for i, m in enumerate(m_values):
        for j, s in enumerate(s_values):
            if result["outcome"][i][j] != "not run":
                continue
            cell = dict(train_fn(s, m))
            acc = cell.get("accuracy")
            finite = acc is not None and math.isfinite(float(acc))
            result["accuracy"][i][j] = float(acc) if finite else None
            result["nan_seen"][i][j] = bool(cell.get("nan_seen", not finite))
            result["outcome"][i][j] = _outcome(cell, collapse_below)
            done += 1
            if path is not None:
                _save(path, result)
            if progress is not None:
                progress(done, total, s, m)
    return result


# Stepped colour bar: [−3, −2) not run, [−2, −1) NaN, [−1, 0) collapsed, [0, 1] accuracy.
_CODES = {"not run": -2.5, "nan": -1.5, "collapsed": -0.5}
_PHASE_SCALE = [
    [0.0, "#f4f4f4"],
    [0.25, "#f4f4f4"],
    [0.25, "#d62728"],
    [0.5, "#d62728"],
    [0.5, "#4d4d4d"],
    [0.75, "#4d4d4d"],
    [0.75, "#440154"],
    [0.8125, "#3b528b"],
    [0.875, "#21918c"],
    [0.9375, "#5ec962"],
    [1.0, "#fde725"],
]


def phase_map_figure(result: Mapping, *, title: str | None = None) -> go.Figure:
    """Heatmap of an (s, m) sweep: accuracy where training worked, red where it produced NaN,
    dark grey where it collapsed, light grey where the cell has not run yet."""
    s_values, m_values = list(result["s_values"]), list(result["m_values"])
    z = np.zeros((len(m_values), len(s_values)))
    text = []
    for i in range(len(m_values)):
        row = []
        for j in range(len(s_values)):
            outcome = result["outcome"][i][j]
            acc = result["accuracy"][i][j]
            if outcome == "ok" and acc is not None:
                z[i, j] = float(acc)
                row.append(f"{100 * float(acc):.0f}%")
            else:
                z[i, j] = _CODES.get(outcome, -2.5)
                row.append({"nan": "NaN", "collapsed": "collapsed"}.get(outcome, ""))
        text.append(row)
    heatmap = trace(
        "heatmap",
        x=[f"{v:g}" for v in s_values],
        y=[f"{v:g}" for v in m_values],
        z=f32(z),
        zmin=-3.0,
        zmax=1.0,
        colorscale=_PHASE_SCALE,
        text=text,
        texttemplate="%{text}",
        hovertemplate="s = %{x}, m = %{y}: %{text}<extra></extra>",
        xgap=2,
        ygap=2,
        colorbar={
            "tickvals": [-2.5, -1.5, -0.5, 0.0, 0.5, 1.0],
            "ticktext": ["not run", "NaN", "collapsed", "0%", "50%", "100%"],
            "title": {"text": "outcome"},
        },
    )
    done = sum(o != "not run" for row in result["outcome"] for o in row)
    layout = base_layout(
        title or "Which (s, m) train? Phase map",
        f"Each cell is one training run ({done} of {len(s_values) * len(m_values)} done): "
        "test accuracy, or what went wrong.",
        xaxis={"title": {"text": "scale s"}, "type": "category"},
        yaxis={"title": {"text": "margin m"}, "type": "category"},
        plot_bgcolor=BAND_GREY,
    )
    return fast_figure([heatmap], layout)
