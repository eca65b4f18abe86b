"""The histogram of per-sample leads (angle to the nearest other weight minus angle to the own
weight), split by what the loss makes of each sample, with a line at the requested margin m.

A sample's lead is what ArcFace's margin is about: its boundary is θ_y + m = θ_j (Deng et al.,
CVPR 2019, §2.1), so the sample is past it exactly when its lead is at least m, in any
dimension and for any layout of the weights. The numbers come from geometry.leads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from marginlab.figures.style import (
    BAND_GREY,
    PALETTE,
    angular_margin,
    base_layout,
    class_names,
    f32,
    fast_figure,
    trace,
)
from marginlab.geometry.leads import LeadSummary, lead_summary

LEAD_BIN_DEG = 5.0  # 0° is a bin edge, so "lead > 0" and "lead < 0" never share a bar


def summary_for(
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    *,
    loss: str,
    s: float = 1.0,
    requested_margin: float | None = None,
    **margin,
) -> LeadSummary:
    """geometry.leads.lead_summary with the loss's requested angular margin filled in."""
    if requested_margin is None:
        requested_margin = angular_margin(loss, **margin)
    return lead_summary(
        features, labels, weights, loss=loss, requested_margin=requested_margin, s=s, **margin
    )


def lowest_class_text(summary: LeadSummary, names: Sequence[str] | None = None) -> str:
    """'7: 41 %': the class that meets the margin least often ('' without samples)."""
    lowest = summary.lowest_class()
    if lowest is None:
        return ""
    return f"{class_names(lowest[0] + 1, names)[lowest[0]]}: {100 * lowest[1]:.0f} %"


def margin_met_text(summary: LeadSummary, names: Sequence[str] | None = None) -> str:
    """'64 % (lowest: 7, 41 %)': the fraction meeting the margin and the weakest class."""
    text = f"{100 * summary.met_fraction:.0f} %"
    lowest = lowest_class_text(summary, names)
    return f"{text} (lowest class {lowest})" if lowest else text


def lead_histogram_figure(
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    *,
    loss: str,
    names: Sequence[str] | None = None,
    title: str | None = None,
    **margin,
) -> go.Figure:
    """Stacked histogram of the leads (degrees) of the samples that meet the margin, that have
    their own weight nearest but miss the margin (grey, as they lie in a margin band), and that
    are nearer another class's weight; dashed lines at the median lead and at m. `margin`:
    summary_for's keywords (s, requested_margin and the loss's margin)."""
    summary = summary_for(features, labels, weights, loss=loss, **margin)
    leads = np.degrees(summary.leads)
    edges = np.arange(-180.0, 180.0 + LEAD_BIN_DEG, LEAD_BIN_DEG)
    centres = f32((edges[:-1] + edges[1:]) / 2)
    groups = (
        ("margin met: " + summary.margin_test, summary.met, PALETTE[2]),
        ("own weight nearest, margin not met", ~summary.met & (summary.leads > 0), BAND_GREY),
        ("another class's weight nearer (lead ≤ 0)", ~summary.met & (summary.leads <= 0),
         PALETTE[3]),
    )  # fmt: skip
    traces = []
    for name, mask, color in groups:
        counts, _ = np.histogram(np.clip(leads[mask], -180.0, 180.0), bins=edges)
        traces.append(
            trace(
                "bar",
                x=centres,
                y=f32(counts),
                width=LEAD_BIN_DEG,
                name=name,
                marker={"color": color},
                hovertemplate="lead ≈ %{x:.0f}°: %{y}<extra>" + name + "</extra>",
            )
        )
    median = math.degrees(summary.median)
    shapes = [_vline(median, "#333333")]
    annotations = [_label(median, f"median {median:.1f}°")]
    # Three short lines: a plotly subtitle does not wrap, and the panel is half a page wide.
    subtitle = (
        "Lead = angle to the nearest other weight − angle to the own weight."
        f"<br>Median {median:.1f}°; nearest weight right: {100 * summary.positive:.0f} %."
        f"<br>Margin met ({summary.margin_test}): {margin_met_text(summary, names)}."
    )
    if summary.requested is not None:
        m_deg = math.degrees(summary.requested)
        shapes.append(_vline(m_deg, PALETTE[2]))
        annotations.append(_label(m_deg, "requested m", high=False))
    layout = base_layout(
        title or "Leads: how far each sample is past its class boundary",
        subtitle,
        barmode="stack",
        bargap=0.0,
        xaxis={
            "title": {"text": "lead θ_nearest other − θ_own (degrees)"},
            "range": [-180, 180],
            "tickvals": list(range(-180, 181, 45)),
        },
        yaxis={"title": {"text": "number of samples"}},
        shapes=shapes,
        annotations=annotations,
        margin={"l": 60, "r": 20, "t": 115, "b": 55},  # room for the three subtitle lines
    )
    return fast_figure(traces, layout)


def _vline(x: float, color: str) -> dict:
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": color, "width": 2, "dash": "dash"},
    }


def _label(x: float, text: str, *, high: bool = True) -> dict:
    """A line's label inside the plot, beside its line (two heights: median and m may meet)."""
    return {
        "x": x,
        "y": 0.99 if high else 0.91,
        "xref": "x",
        "yref": "paper",
        "text": text,
        "showarrow": False,
        "yanchor": "top",
        "xanchor": "left",
        "xshift": 3,
        "bgcolor": "rgba(255,255,255,0.7)",
    }
