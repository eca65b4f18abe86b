"""2-D feature-space views: the unit circle and the raw feature plane (what they draw like the
sphere views is in figures.parts). Arrays in, plotly Figure out; regions come from
geometry.region_labels (hence from the one margin function, DESIGN.md §3).

Every view emits a FIXED list of traces for a given number of classes (empty traces where a
class has no sample), so Plotly.react and animation frames can update them in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from marginlab.figures.parts import (
    BAND_NAME,
    class_points,
    class_setup,
    misclassified_mask,
    spoke_path,
    weight_spokes,
)
from marginlab.figures.style import (
    BAND_GREY,
    CLASS_LEGEND,
    area,
    at_chosen_norm,
    base_layout,
    discrete_colorscale,
    empty_legend_entry,
    f32,
    fast_figure,
    line_trace,
    margin_label,
    trace,
)
from marginlab.geometry.angles import normalize_rows
from marginlab.geometry.regions import (
    BAND,
    PLAIN_ARGMAX,
    circle_directions,
    circle_runs,
    raw_plane_regions,
    region_labels,
)
from marginlab.losses.adaptive_curves import NORM_DEPENDENT, spread_edge
from marginlab.losses.registry import loss_spec

# Above this many points, 2-D scatter uses WebGL (10k redraw ~100 ms vs ~290 ms for SVG). The
# 1,000 probe points of a Compare circle panel: 44-68 ms a redraw as WebGL, 157-193 ms as SVG
# (headless chromium, software WebGL, 2 busy cores), of which the points alone 31-45 ms against
# 100-140 ms. A small face set's points stay SVG.
WEBGL_ABOVE = 200
CIRCLE_SAMPLES = 3_600  # 0.1° resolution: a band of m = 0.05 rad is 29 samples wide
HALO_NAME = "band at the mean margin + σ (ElasticFace's spread of margins)"


def _scatter_cls(n_points: int):
    return "scattergl" if n_points > WEBGL_ABOVE else "scatter"


def _fan_polygon(runs, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """One closed outline for a union of circular sectors: centre → arc → centre → arc …

    All fans share the centre, so a single path with fill="toself" paints them all without
    NaN separators (one trace per class instead of one per sector).
    """
    xs, ys = [np.zeros(1)], [np.zeros(1)]
    for run in runs:
        n = max(2, int(math.ceil((run.end - run.start) / math.radians(1.0))) + 1)
        phi = np.linspace(run.start, run.end, n)
        xs += [radius * np.cos(phi), np.zeros(1)]
        ys += [radius * np.sin(phi), np.zeros(1)]
    return np.concatenate(xs), np.concatenate(ys)


def circle_figure(
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    *,
    loss: str,
    s: float,
    names: Sequence[str] | None = None,
    jitter: float = 0.0,
    bias: np.ndarray | None = None,
    title: str | None = None,
    **margin,
) -> go.Figure:
    """2-D features projected onto the unit circle, with decision sectors and margin bands.

    Sectors: the class that owns each direction with margin (region_labels on a 0.1° circle);
    grey: the margin bands where no class wins with margin. Spokes: class weight directions.
    Black crosses: samples the test-time classifier (no margin) gets wrong. `jitter` spreads the
    points radially (seeded) so that piles of identical directions stay visible.
    """
    labels, w, colors, legend = class_setup(features, labels, weights, names, 2, "circle_figure")
    n_classes = w.shape[0]
    drawn, norm_note = at_chosen_norm(margin, loss, features)
    region = region_labels(circle_directions(CIRCLE_SAMPLES), weights, loss=loss, s=s, **drawn)
    runs = circle_runs(region)
    unit = normalize_rows(features)
    if jitter > 0:
        unit = unit * np.random.default_rng(0).uniform(1 - jitter, 1 + jitter, (len(unit), 1))
    wrong = misclassified_mask(features, labels, weights, loss, bias)
    scatter = _scatter_cls(len(labels))

    traces: list = []
    for k in range(n_classes):
        x, y = _fan_polygon([r for r in runs if r.label == k], 1.12)
        region_name = f"region of {legend[k]}"
        traces.append(
            area(x, y, colors[k], 0.16, region_name, legendgroup=f"class{k}", showlegend=False)
        )
    edge = spread_edge(loss, margin.get("adaptive", {}))
    if edge is not None:  # ElasticFace: the band one σ wider, pale, around the mean's band
        outer = region_labels(circle_directions(CIRCLE_SAMPLES), weights, loss=loss, s=s,
                              **{**drawn, "adaptive": edge})  # fmt: skip
        x, y = _fan_polygon([r for r in circle_runs(outer) if r.label == BAND], 1.12)
        traces.append(area(x, y, BAND_GREY, 0.22, HALO_NAME))
    x, y = _fan_polygon([r for r in runs if r.label == BAND], 1.12)
    traces.append(area(x, y, BAND_GREY, 0.55, BAND_NAME, showlegend=loss not in PLAIN_ARGMAX))
    ring = circle_directions(361 - 1)
    traces.append(
        line_trace(
            np.append(ring[:, 0], 1.0),
            np.append(ring[:, 1], 0.0),
            "unit circle",
            line={"color": "#555555", "width": 1},
            showlegend=False,
            hoverinfo="skip",
        )
    )
    spokes = [spoke_path(w[k], 1.3) for k in range(n_classes)]
    traces += weight_spokes(spokes, colors, legend)
    traces += class_points(unit, labels, unit[wrong], scatter, colors, legend, size=6)
    axis = {"range": [-1.45, 1.45], "zeroline": False, "constrain": "domain"}
    layout = base_layout(
        title or f"Features on the unit circle — {margin_label(loss, s, **margin)}",
        "Shaded: the class that wins WITH margin in each direction; grey: margin bands "
        "(no class wins by the margin); spokes: class weights W_j." + norm_note,
        xaxis={**axis, "title": {"text": "x̂₁ (normalised feature, dim 1)"}},
        yaxis={
            **axis,
            "title": {"text": "x̂₂ (normalised feature, dim 2)"},
            "scaleanchor": "x",
            "scaleratio": 1,
        },
        legend=CLASS_LEGEND,
    )
    return fast_figure(traces, layout)


def raw_feature_figure(
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    *,
    loss: str,
    s: float = 1.0,
    bias: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    grid: int = 160,
    title: str | None = None,
    **margin,
) -> go.Figure:
    """Raw (unnormalised) 2-D features and weight vectors, regions shaded underneath.

    Plain softmax spreads classes in a radial fan (long features are confident ones); with a
    bias its regions are bounded by straight lines that need not pass through the origin
    (raw_plane_regions). For the normalised losses the regions are cones (region_labels).
    """
    x = np.asarray(features, dtype=np.float64).reshape(-1, 2)
    labels, w, colors, legend = class_setup(
        features, labels, weights, names, 2, "raw_feature_figure"
    )
    n_classes = w.shape[0]
    extent = float(np.max(np.abs(x))) if x.size else 0.0
    extent = 1.15 * (extent if math.isfinite(extent) and extent > 0 else 1.0)
    axis_values = np.linspace(-extent, extent, grid)
    gx, gy = np.meshgrid(axis_values, axis_values)
    grid_xy = np.stack([gx.ravel(), gy.ravel()], axis=1)
    raw = loss_spec(loss).raw_logits
    if raw:
        region = raw_plane_regions(grid_xy, np.asarray(weights).reshape(n_classes, -1), bias)
    else:
        region = region_labels(grid_xy, weights, loss=loss, s=s, **margin)
    wrong = misclassified_mask(x, labels, weights, loss, bias)
    scatter = _scatter_cls(len(labels))
    w_norm = float(np.max(np.linalg.norm(w, axis=-1))) if w.size else 0.0
    w_scale = 0.9 * extent / w_norm if w_norm > 0 else 1.0

    traces: list = [
        trace(
            "heatmap",
            x=f32(axis_values),
            y=f32(axis_values),
            # Whole numbers (0 = band, 1..C = class): one byte each, not four (the figure's JSON
            # went from 177 kB to 71 kB, and the browser decodes that much less per redraw).
            z=(region + 1).reshape(grid, grid).astype(np.uint8 if n_classes < 255 else np.uint16),
            zmin=-0.5,
            zmax=n_classes + 0.5,
            showscale=False,
            opacity=0.35,
            hoverinfo="skip",
            colorscale=discrete_colorscale([BAND_GREY] + colors),
            name="decision regions",
        )
    ]
    if loss not in PLAIN_ARGMAX:
        traces.append(empty_legend_entry(BAND_NAME, BAND_GREY))
    spokes = [
        spoke_path(w[k], 1.0) * (np.linalg.norm(w[k], axis=-1).max() * w_scale)
        for k in range(n_classes)
    ]
    traces += weight_spokes(spokes, colors, legend, arrows=True)
    traces += class_points(x, labels, x[wrong], scatter, colors, legend, size=5)
    with_bias = bias is not None and raw
    if loss in PLAIN_ARGMAX:
        shading = "Shaded: the predicted class" + (
            " (softmax with bias: straight boundaries off the origin)" if with_bias else ""
        )
    else:
        # region_labels: the cone where a class wins WITH margin; the bands stay grey.
        shading = (
            "Shaded: the cone where each class wins WITH margin; grey: margin bands (no class "
            "wins by the margin; the test-time prediction has no margin)"
        )
    if loss in NORM_DEPENDENT:  # AdaFace, MagFace: each point at its own ‖x‖, no cones
        shading = shading.replace("the cone where", "where") + ", at each point's own ‖x‖"
    subtitle = f"Before normalisation. {shading}; arrows: class weights W_j, drawn ×{w_scale:.2g}."
    axis = {"range": [-extent, extent], "zeroline": True, "constrain": "domain"}
    layout = base_layout(
        title or f"Raw 2-D features — {margin_label(loss, s, **margin)}",
        subtitle,
        xaxis={**axis, "title": {"text": "feature x₁ (raw)"}},
        yaxis={**axis, "title": {"text": "feature x₂ (raw)"}, "scaleanchor": "x", "scaleratio": 1},
        legend=CLASS_LEGEND,
    )
    return fast_figure(traces, layout)
