"""Curves and histograms over the angle θ: the target logit (ArcFace paper Fig. 4), the binary
decision boundaries (ArcFace paper Fig. 5 / its boundary table), the target-class probability,
and pair-angle histograms (the lead histogram is in figures.leads). Every curve is evaluated
through margins.target_logit_np.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from marginlab.figures.loss_colors import loss_color
from marginlab.figures.style import (
    BAND_GREY,
    PALETTE,
    area,
    base_layout,
    class_colors,
    degree_axis,
    empty_legend_entry,
    f32,
    fast_figure,
    line_trace,
    margin_label,
    margin_of,
    rgba,
    subplot_row,
    trace,
)
from marginlab.geometry.angles import theta_histogram
from marginlab.geometry.regions import pair_angle_histograms
from marginlab.losses.adaptive_curves import reference_target
from marginlab.losses.margins import target_logit_np
from marginlab.losses.registry import loss_spec

THETA_DEG = np.linspace(0.0, 180.0, 361)  # 0.5° steps: 20°, 30°, 45°, 60°… lie on the grid
PAPER_GREY = "#64748b"  # the reference curves recede behind the current ones
PAPER_ENTRY = "ArcFace paper, Fig. 4b (dotted; hover for each)"

# The curves of the ArcFace paper's Fig. 4b (Deng et al., CVPR 2019), drawn for reference.
PAPER_CURVES: tuple[dict, ...] = (
    {"label": "Softmax", "loss": "normface"},
    {"label": "SphereFace (m=4, λ=5)", "loss": "sphereface", "sphere_m": 4, "lam": 5.0},
    {"label": "SphereFace (m1=1.35)", "loss": "sphereface-arccos", "m1": 1.35},
    {"label": "ArcFace (m=0.5)", "loss": "arcface", "m2": 0.5},
    {"label": "CosFace (m=0.35)", "loss": "cosface", "m3": 0.35},
    {"label": "CM1 (1, 0.3, 0.2)", "loss": "combined", "m1": 1.0, "m2": 0.3, "m3": 0.2},
    {"label": "CM2 (0.9, 0.4, 0.15)", "loss": "combined", "m1": 0.9, "m2": 0.4, "m3": 0.15},
)

# The binary-boundary panels of the ArcFace paper (plus NormFace), as target_logit keywords.
BOUNDARY_PANELS: tuple[dict, ...] = (
    {"label": "Softmax", "loss": "softmax"},
    {"label": "NormFace", "loss": "normface"},
    {"label": "SphereFace (m=4)", "loss": "sphereface", "sphere_m": 4},
    {"label": "CosFace (m=0.35)", "loss": "cosface", "m3": 0.35},
    {"label": "ArcFace (m=0.5)", "loss": "arcface", "m2": 0.5},
)


def _psi(spec: Mapping, cos: np.ndarray) -> np.ndarray:
    """ψ(cos θ) of a curve spec through its loss's registry branch (softmax and center: cos θ,
    i.e. equal ‖W‖ and no bias); parameters the loss does not use are neutral."""
    loss = loss_spec(spec["loss"])
    if loss.adaptive:  # the post-2020 family: its own ψ at its reference (adaptive_curves)
        values = spec.get("adaptive") or margin_of(spec).get("adaptive", {})
        return reference_target(loss.name, values, cos)
    return target_logit_np(cos, **loss.margin_kwargs(margin_of(spec)))


def _psi_trace(spec: Mapping, cos: np.ndarray, name: str, **style) -> dict:
    """The ψ(θ) curve of `spec` over THETA_DEG, named on hover, on the curves' axis y2."""
    return line_trace(
        THETA_DEG,
        _psi(spec, cos),
        name,
        hovertemplate="θ = %{x}°: ψ = %{y:.4f}<extra>" + name + "</extra>",
        yaxis="y2",
        **style,
    )


def target_logit_figure(
    current: Mapping | Sequence[Mapping],
    *,
    theta_y: np.ndarray | None = None,
    show_paper_curves: bool = True,
    title: str | None = None,
) -> go.Figure:
    """Target logit ψ(θ) vs θ (0–180°) with a histogram of the probe set's θ_y behind it.

    ArcFace paper Fig. 4 (a) and (b) in one: `current` is one margin spec or several (dicts with
    "loss" and its margin keywords, optional "label"); the paper's seven curves are drawn thin
    and dotted for reference. `theta_y` (radians) adds the histogram on a second y axis.
    """
    specs = [current] if isinstance(current, Mapping) else list(current)
    cos = np.cos(np.radians(THETA_DEG))
    traces: list = []
    if theta_y is not None:
        counts, edges = theta_histogram(theta_y, bins=36)
        traces.append(
            trace(
                "bar",
                x=f32(np.degrees(edges[:-1] + edges[1:]) / 2),
                y=f32(counts),
                width=5.0,
                marker={"color": rgba(BAND_GREY, 0.45)},
                name="θ_y of the probe set (count)",
                hovertemplate="θ_y ≈ %{x:.0f}°: %{y} samples<extra></extra>",
            )
        )
    if show_paper_curves:
        # Seven reference curves, one legend entry: seven entries took half the panel. Each
        # names itself on hover, and one click on the entry hides or shows them all.
        entry = empty_legend_entry(PAPER_ENTRY, PAPER_GREY)
        entry.update(mode="lines", line={"color": PAPER_GREY, "width": 1.2, "dash": "dot"})
        traces.append({**entry, "legendgroup": "paper", "yaxis": "y2"})
        for spec in PAPER_CURVES:
            traces.append(
                _psi_trace(
                    spec,
                    cos,
                    f"paper: {spec['label']}",
                    legendgroup="paper",
                    showlegend=False,
                    line={"color": PAPER_GREY, "width": 1.2, "dash": "dot"},
                    opacity=0.8,
                )
            )
    for spec in specs:
        label = spec.get("label") or margin_label(spec["loss"], **margin_of(spec))
        # One loss alone is black, as in the paper; several get their loss colours.
        color = "#111111" if len(specs) == 1 else loss_color(spec["loss"])
        traces.append(_psi_trace(spec, cos, label, line={"color": color, "width": 3}))
    layout = base_layout(
        title or "Target logit vs angle θ (ArcFace paper, Fig. 4)",
        "ψ(θ) before scaling by s: the logit the true class gets when the feature sits at θ "
        "from its weight. Bars: where the probe samples are now.",
        xaxis=degree_axis("θ between feature and its class weight (degrees)"),
        # The curves live on the overlaying axis y2 so that they are drawn above the bars.
        yaxis={
            "title": {"text": "probe samples"},
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
        },
        yaxis2={
            "title": {"text": "target logit ψ(θ) (unscaled)"},
            "overlaying": "y",
            "side": "left",
            "tickmode": "auto",
        },
    )
    return fast_figure(traces, layout)


def _boundary(spec: Mapping, theta_deg: np.ndarray) -> np.ndarray:
    """θ2 (degrees) on the boundary of 'class 1 wins with margin': s·ψ(θ1) = s·cos θ2.

    s > 0 cancels; class 1 wins exactly where cos θ2 < ψ(θ1), i.e. θ2 > arccos ψ(θ1) (ψ clipped
    to [−1, 1]: below −1 class 1 never wins, above 1 it always does).
    """
    psi = _psi(spec, np.cos(np.radians(theta_deg)))
    return np.degrees(np.arccos(np.clip(psi, -1.0, 1.0)))


def binary_boundary_figure(
    panels: Sequence[Mapping] = BOUNDARY_PANELS, *, title: str | None = None
) -> go.Figure:
    """Two classes in the (θ1, θ2) plane: where each class wins with margin, and the grey margin
    area between, for each loss — the decision-margin picture of the ArcFace paper (Fig. 5).

    Class 1 wins where s·ψ(θ1) > s·cos θ2, class 2 where s·ψ(θ2) > s·cos θ1 (ψ from
    target_logit). Softmax is drawn with ‖W1‖ = ‖W2‖ and no bias, so it matches NormFace.
    """
    panels = list(panels)
    titles = [p.get("label") or margin_label(p["loss"], **margin_of(p)) for p in panels]
    # Gaps wide enough that one panel's "180" and the next one's "0" do not read "1800".
    axes, refs = subplot_row(titles, spacing=0.05)
    t = np.linspace(0.0, 180.0, 361)
    c1, c2 = PALETTE[0], PALETTE[1]
    traces: list = []
    for k, (spec, (xref, yref)) in enumerate(zip(panels, refs, strict=True)):
        first = k == 0
        b = _boundary(spec, t)
        where = {"xaxis": xref, "yaxis": yref, "showlegend": first}
        square = ([0, 180, 180, 0, 0], [0, 0, 180, 180, 0])
        band = "margin: neither class wins"
        traces.append(area(*square, BAND_GREY, 0.6, band, legendgroup="band", **where))
        for region, xs, ys, color in (
            ("class 1 wins (with margin)", np.r_[t, 180, 0], np.r_[b, 180, 180], c1),
            ("class 2 wins (with margin)", np.r_[b, 180, 180], np.r_[t, 180, 0], c2),
        ):
            traces.append(area(xs, ys, color, 0.55, region, legendgroup=region, **where))
        for name, xs, ys, color in (
            ("boundary of class 1", t, b, c1),
            ("boundary of class 2", b, t, c2),
        ):
            traces.append(
                line_trace(
                    xs,
                    ys,
                    name,
                    legendgroup=name,
                    line={"color": color, "width": 2, "dash": "dash"},
                    hovertemplate="θ1 = %{x:.1f}°, θ2 = %{y:.1f}°<extra>" + name + "</extra>",
                    **where,
                )
            )
        ticks = {"range": [0, 180], "tickvals": [0, 90, 180]}
        axes["xaxis" if first else f"xaxis{k + 1}"].update(title={"text": "θ1 (°)"}, **ticks)
        # Square panels: the paper's pictures are symmetric in θ1 and θ2.
        axes["yaxis" if first else f"yaxis{k + 1}"].update(
            scaleanchor=xref, showticklabels=first, **ticks
        )
    axes["yaxis"]["title"] = {"text": "θ2 (°)"}
    layout = base_layout(
        title or "Binary decision margins in the (θ1, θ2) plane (ArcFace paper, Fig. 5)",
        "θ1, θ2: angles from a feature to W1 and W2. Class 1 wins where s·ψ(θ1) > s·cos θ2 "
        "(s cancels). Softmax assumes equal weight norms and no bias.",
        height=430,
        **axes,
    )
    return fast_figure(traces, layout)


def target_probability_figure(
    loss: str,
    s: float,
    *,
    n_classes: int = 10,
    other_angle: float = math.pi / 2,
    feature_norm: float | None = None,
    title: str | None = None,
    **margin,
) -> go.Figure:
    """Softmax probability of the target class vs θ_y, with and without the margin.

    Assumption (stated in the subtitle): the other C−1 weights all sit at `other_angle` from
    the feature, so p = 1 / (1 + (C−1)·exp(s·cos φ − s·ψ(θ))). Computed as a stable sigmoid, so
    s = 256 does not overflow. The original SphereFace scales by ‖x‖ instead of s (Liu et al.,
    CVPR 2017): `feature_norm` (the run's median ‖x‖), or 1 when no run is given, said so.
    """
    cos = np.cos(np.radians(THETA_DEG))
    scale = float(s)
    note = ""
    if loss_spec(loss).scale == "norm":
        scale = 1.0 if feature_norm is None or not feature_norm > 0 else float(feature_norm)
        name = loss_spec(loss).label
        note = (
            f" {name} scales by ‖x‖, not s: drawn at the run's median ‖x‖ = {scale:.3g}."
            if feature_norm is not None and feature_norm > 0
            else f" {name} scales by ‖x‖, not s: drawn at ‖x‖ = 1 (no run)."
        )
    others = scale * math.cos(other_angle) + math.log(max(n_classes - 1, 1))
    spec = {"loss": loss, **margin}
    psi = _psi(spec, cos)
    curves = (
        ("with margin (training)", psi, "#111111", "solid"),
        ("without margin (test time)", cos, PALETTE[0], "dash"),
    )
    if np.allclose(psi, cos, rtol=0.0, atol=1e-9):  # no margin: one curve, not two alike
        curves = (("no margin: the same in training and at test time", cos, "#111111", "solid"),)
    traces = [
        line_trace(
            THETA_DEG,
            np.exp(-np.logaddexp(0.0, others - scale * psi)),
            name,
            line={"color": color, "width": 3, "dash": dash},
            hovertemplate="θ = %{x}°: p = %{y:.3f}<extra>" + name + "</extra>",
        )
        for name, psi, color, dash in curves
    ]
    if note:
        best = float(np.max(traces[0]["y"]))
        note += f" There the true class's probability never passes {best:.2f}."
    layout = base_layout(
        title or f"Probability of the true class vs θ — {margin_label(loss, s, **margin)}",
        f"Assumption: the other C−1 = {n_classes - 1} class weights all lie "
        f"{math.degrees(other_angle):.0f}° from the feature.{note}",
        xaxis=degree_axis("θ between feature and its class weight (degrees)"),
        yaxis={"title": {"text": "softmax probability of the true class"}, "range": [0, 1.02]},
    )
    return fast_figure(traces, layout)


def pair_angle_bars(hist: Mapping, names: tuple[str, str], **where) -> list[dict]:
    """Overlaid bars of same-class (positive) and different-class (negative) pair angles, as
    fractions, from a histogram dict with "edges" (radians), "positive" and "negative" counts.
    `where` goes to every trace (axes, legendgroup, showlegend)."""
    edges = np.degrees(np.asarray(hist["edges"], dtype=np.float64))
    centres = f32((edges[:-1] + edges[1:]) / 2)
    colors = class_colors(4)
    traces = []
    for key, name, color in (("positive", names[0], colors[2]), ("negative", names[1], colors[3])):
        counts = np.asarray(hist[key], dtype=np.float64)
        fraction = counts / counts.sum() if counts.sum() > 0 else counts
        traces.append(
            trace(
                "bar",
                x=centres,
                y=f32(fraction),
                width=float(edges[1] - edges[0]),
                name=name,
                opacity=0.6,
                marker={"color": color},
                hovertemplate="%{x:.0f}°: %{y:.1%}<extra>" + name + "</extra>",
                **where,
            )
        )
    return traces


def pair_angle_figure(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    bins: int = 36,
    max_pairs: int = 20_000,
    title: str | None = None,
) -> go.Figure:
    """Angles between same-class and different-class pairs of features (fractions, degrees):
    the usual verification view for d > 3, where the sphere can only be shown projected."""
    hist = pair_angle_histograms(features, labels, bins=bins, max_pairs=max_pairs)
    traces = pair_angle_bars(
        hist,
        (
            f"same class ({hist['n_positive']} pairs)",
            f"different classes ({hist['n_negative']} pairs)",
        ),
    )
    note = "random sample of pairs" if hist["sampled"] else "all pairs"
    layout = base_layout(
        title or "Angles between pairs of features",
        f"Same-class pairs should be at small angles, different-class pairs near 90° ({note}).",
        barmode="overlay",
        xaxis=degree_axis("angle between the two features (degrees)"),
        yaxis={"title": {"text": "fraction of pairs"}, "tickformat": ".0%"},
    )
    return fast_figure(traces, layout)
