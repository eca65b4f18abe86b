"""Open-set verification pictures: ROC curves and pair-angle distributions per loss.

The pair-angle picture is the one the ArcFace paper (Deng et al., CVPR 2019) draws for its
verification sets: same-person pairs should sit at small angles, different-person pairs near
90°, and the gap between the two humps is what a threshold can use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np
import plotly.graph_objects as go

from marginlab.figures.curves import pair_angle_bars
from marginlab.figures.style import (
    PALETTE,
    base_layout,
    fast_figure,
    line_trace,
    subplot_row,
)

FAR_MARK = 0.01


class VerificationScores(Protocol):
    """What these pictures read of a verification report (experiments.verification's
    VerificationReport is one): figures sit below experiments, so they name the fields they
    draw instead of importing the class (tests/test_layers.py)."""

    auc: float
    eer: float
    fpr: np.ndarray
    tpr: np.ndarray
    tar_at_far: Mapping[float, float]

    def angle_histograms(self, bins: int = 36) -> dict[str, np.ndarray]: ...


def roc_figure(reports: Mapping[str, VerificationScores], *, title: str | None = None) -> go.Figure:
    """True accept rate against false accept rate (log scale) for each loss, FAR = 1 % marked."""
    traces = []
    for k, (name, report) in enumerate(reports.items()):
        # Log x: the interesting part is at low FAR; FAR = 0 points are moved to 1e-4.
        fpr = np.clip(np.asarray(report.fpr, dtype=np.float64), 1e-4, 1.0)
        tar = report.tar_at_far.get(FAR_MARK, float("nan"))
        traces.append(
            line_trace(
                fpr,
                report.tpr,
                f"{name}: AUC {report.auc:.3f}, EER {report.eer:.1%}, TAR@1% {tar:.1%}",
                line={"color": PALETTE[k % len(PALETTE)], "width": 2.5, "shape": "hv"},
                hovertemplate="FAR %{x:.2%}: TAR %{y:.1%}<extra>" + name + "</extra>",
            )
        )
    layout = base_layout(
        title or "ROC on unseen identities",
        "How many same-person pairs are accepted (TAR) for a given share of accepted "
        "different-person pairs (FAR). Dashed: FAR = 1 %.",
        xaxis={"title": {"text": "false accept rate (log scale)"}, "type": "log"},
        yaxis={"title": {"text": "true accept rate"}, "range": [0, 1.02], "tickformat": ".0%"},
        shapes=[
            {
                "type": "line",
                "x0": FAR_MARK,
                "x1": FAR_MARK,
                "y0": 0,
                "y1": 1,
                "line": {"dash": "dash", "color": "#666666"},
            }
        ],
    )
    return fast_figure(traces, layout)


def pair_angle_panels(
    reports: Mapping[str, VerificationScores], *, bins: int = 36, title: str | None = None
) -> go.Figure:
    """One panel per loss: angles of same-person vs different-person pairs (fractions)."""
    axes, refs = subplot_row(list(reports), spacing=0.04)
    traces = []
    for k, (report, (xref, yref)) in enumerate(zip(reports.values(), refs, strict=True)):
        where = {"xaxis": xref, "yaxis": yref, "showlegend": k == 0}
        hist = report.angle_histograms(bins=bins)
        traces += pair_angle_bars(hist, ("same person", "different people"), **where)
    layout = base_layout(
        title or "Angles between the embeddings of a pair (unseen people)",
        "Same-person pairs should sit at small angles, different people near 90°.",
        barmode="overlay",
        **axes,
    )
    for name in [key for key in layout if key.startswith("xaxis")]:
        layout[name] = {**layout[name], "range": [0, 180], "tickvals": [0, 45, 90, 135, 180]}
    return fast_figure(traces, layout)
