"""Figures for the margins that adapt (issue 15): the margin as a function of ‖x‖ with the
batch's norms under it (AdaFace, MagFace), the target-logit family over θ (ElasticFace's mean
with its ±σ halo, CurricularFace's hard-negative curve c·(t + c) beside its target, AdaFace and
MagFace at low, middle and high norm), and the running state over training (CurricularFace's t,
AdaCos's s, AdaFace's μ and σ). Arrays in, go.Figure out; the numbers come from
losses/adaptive_curves.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from marginlab.figures.curves import THETA_DEG
from marginlab.figures.style import (
    BAND_GREY,
    PALETTE,
    base_layout,
    f32,
    fast_figure,
    line_trace,
    rgba,
    trace,
)
from marginlab.losses.adaptive_curves import (
    CURVE_NOTES,
    STATE_LABELS,
    norm_margin_curves,
    norm_range,
    target_curves,
)

_LINE = {
    "target": {"width": 3},
    "negative": {"width": 3, "dash": "dash"},
    "halo": {"width": 1.5, "dash": "dot"},
    "reference": {"width": 1.2, "dash": "dot", "color": "#777777"},
}


def _histogram(values: np.ndarray, bins: np.ndarray, name: str, unit: str) -> dict:
    counts, edges = np.histogram(values, bins=bins)
    return trace(
        "bar",
        x=f32((edges[:-1] + edges[1:]) / 2),
        y=f32(counts),
        width=float(edges[1] - edges[0]),
        marker={"color": rgba(BAND_GREY, 0.45)},
        name=name,
        hovertemplate=f"≈ %{{x:.2f}}{unit}: %{{y}} samples<extra></extra>",
    )


def _curve_traces(curves: Sequence, x: np.ndarray, hover: str) -> list[dict]:
    traces = []
    for k, curve in enumerate(curves):
        line = {"color": PALETTE[k % len(PALETTE)], **_LINE[curve.role]}
        traces.append(
            line_trace(
                x,
                curve.y,
                curve.label,
                line=line,
                hovertemplate=hover + "<extra>" + curve.label + "</extra>",
                yaxis="y2",
            )
        )
    return traces


def _two_axis_layout(title: str, subtitle: str, x_title: str, y_title: str, **x: Any) -> dict:
    # Curves on the overlaying axis y2 so that they are drawn above the histogram bars.
    return base_layout(
        title,
        subtitle,
        xaxis={"title": {"text": x_title}, **x},
        yaxis={"title": {"text": "samples"}, "side": "right", "showgrid": False,
               "rangemode": "tozero"},
        yaxis2={"title": {"text": y_title}, "overlaying": "y", "side": "left"},
    )  # fmt: skip


def norm_margin_figure(
    loss: str,
    params: Mapping[str, Any],
    *,
    norms: np.ndarray | None = None,
    state: Mapping[str, float] | None = None,
    label: str = "",
) -> go.Figure:
    """The margin vs the feature norm ‖x‖, tied to the current parameters and running state,
    with a histogram of `norms` (e.g. the probe set's raw features) behind it."""
    finite = np.asarray([] if norms is None else norms, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    end = max(norm_range(loss, params, state), 1.1 * float(finite.max()) if finite.size else 0.0)
    end = end if end > 0 else 1.0
    grid = np.linspace(0.0, end, 400)
    curves = norm_margin_curves(loss, params, grid, state)
    traces: list = []
    if finite.size:
        bins = np.linspace(0.0, end, 41)
        traces.append(_histogram(finite, bins, "‖x‖ of the probe set (count)", ""))
    traces += _curve_traces(curves, grid, "‖x‖ = %{x:.2f}: %{y:.4f}")
    subtitle = "The margin each sample gets from its raw feature norm (no curve: this loss's "
    subtitle += "margin does not depend on ‖x‖). Bars: the probe set's norms now."
    title = f"Margin vs feature norm ‖x‖{f' — {label}' if label else ''}"
    layout = _two_axis_layout(title, subtitle, "‖x‖ (raw feature norm)", "margin", range=[0, end])
    return fast_figure(traces, layout)


def adaptive_target_figure(
    loss: str,
    params: Mapping[str, Any],
    *,
    theta_y: np.ndarray | None = None,
    state: Mapping[str, float] | None = None,
    label: str = "",
) -> go.Figure:
    """Unscaled logits vs θ for one of the adaptive losses (target family, hard-negative curve,
    ±σ halo), over a histogram of the probe set's θ_y (radians) where given."""
    cos = np.cos(np.radians(THETA_DEG))
    traces: list = []
    if theta_y is not None and len(theta_y):
        bins = np.linspace(0.0, 180.0, 37)
        traces.append(_histogram(np.degrees(theta_y), bins, "θ_y of the probe set (count)", "°"))
    curves = target_curves(loss, params, cos, state)
    traces += _curve_traces(curves, THETA_DEG, "θ = %{x}°: %{y:.4f}")
    subtitle = "Before scaling by s; a negative's curve is over its own angle θ_j. "
    subtitle += CURVE_NOTES.get(loss, "")
    title = f"Logits vs angle θ{f' — {label}' if label else ''}"
    layout = _two_axis_layout(
        title, subtitle, "θ (degrees)", "logit (unscaled)", range=[0, 180],
        tickvals=list(range(0, 181, 30)),
    )  # fmt: skip
    return fast_figure(traces, layout)


def running_state_figure(
    loss: str, steps: np.ndarray, series: Mapping[str, np.ndarray], *, label: str = ""
) -> go.Figure:
    """The running state over training (one line per quantity the loss keeps): what the head
    used at each snapshot. Non-finite points are dropped, never drawn."""
    names = STATE_LABELS.get(loss, {})
    x = np.asarray(steps, dtype=np.float64)
    traces = []
    for k, (name, text) in enumerate(names.items()):
        y = np.asarray(series.get(name, np.full(len(x), np.nan)), dtype=np.float64)
        keep = np.isfinite(y) & np.isfinite(x)
        traces.append(
            trace(
                "scatter",
                x=f32(x[keep]),
                y=f32(y[keep]),
                mode="lines+markers",
                name=text,
                line={"color": PALETTE[k], "width": 2},
                marker={"size": 4},
                yaxis="y" if k == 0 else "y2",
            )
        )
    titles = list(names.values()) or ["(this loss keeps no running state)"]
    layout = base_layout(
        f"Running state over training{f' — {label}' if label else ''}",
        "Updated in each training step before it is used; eval never changes it.",
        xaxis={"title": {"text": "step"}},
        yaxis={"title": {"text": titles[0]}},
    )
    if len(titles) > 1:
        layout["yaxis2"] = {
            "title": {"text": titles[1]},
            "overlaying": "y",
            "side": "right",
            "automargin": True,
        }
    return fast_figure(traces, layout)
