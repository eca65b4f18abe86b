"""Figures of the "Reproduce the paper" page that no other page draws: the θ_y distribution at
the start and at the end of training (ArcFace paper, Deng et al. CVPR 2019, Fig. 4a).
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from marginlab.figures.curves import pair_angle_bars
from marginlab.figures.style import base_layout, degree_axis, fast_figure


def theta_shift_figure(
    edges: np.ndarray,
    start_counts: np.ndarray,
    end_counts: np.ndarray,
    *,
    start_step: int,
    end_step: int,
    title: str | None = None,
) -> go.Figure:
    """Overlaid histograms (fractions) of θ_y, the angle between each feature and its own class
    weight, at two steps of one run; `edges` in radians over [0, π]."""
    start_counts = np.asarray(start_counts, dtype=np.float64)
    end_counts = np.asarray(end_counts, dtype=np.float64)
    centres = (np.asarray(edges[:-1]) + np.asarray(edges[1:])) / 2

    def mean_deg(counts: np.ndarray) -> float:
        total = counts.sum()
        return math.degrees(float((counts * centres).sum() / total)) if total else 0.0

    hist = {"edges": edges, "positive": start_counts, "negative": end_counts}
    names = (
        f"step {start_step} (mean {mean_deg(start_counts):.0f}°)",
        f"step {end_step} (mean {mean_deg(end_counts):.0f}°)",
    )
    layout = base_layout(
        title or "θ_y at the start and at the end of training (ArcFace paper, Fig. 4a)",
        "θ_y: the angle between a held-out image's feature and its own class weight.",
        barmode="overlay",
        xaxis=degree_axis("θ_y (degrees)"),
        yaxis={"title": {"text": "fraction of images"}, "tickformat": ".0%"},
    )
    return fast_figure(pair_angle_bars(hist, names), layout)
