"""Feature-space views: the unit circle (2-D), the raw feature plane, the sphere (3-D) and a
PCA projection for d > 3. Arrays in, plotly Figure out; regions come from geometry.region_labels
(hence from the one margin function, DESIGN.md §3).

Every view emits a FIXED list of traces for a given number of classes (empty traces where a
class has no sample), so Plotly.react and animation frames can update them in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from marginlab.angles import normalize_rows
from marginlab.figures_style import (
    BAND_GREY,
    MISCLASSIFIED,
    angular_margin,
    base_layout,
    class_colors,
    class_names,
    discrete_colorscale,
    empty_legend_entry,
    f32,
    lighten,
    margin_label,
    rgba,
)
from marginlab.geometry import (
    BAND,
    PLAIN_ARGMAX,
    Projection3D,
    circle_directions,
    circle_runs,
    icosphere,
    pca_to_3d,
    predicted_labels,
    raw_plane_regions,
    region_labels,
    sphere_face_labels,
    subdivisions_for_band,
)

# Above this many points, 2-D scatter uses WebGL (10k redraw ~100 ms vs ~290 ms for SVG).
WEBGL_ABOVE = 5_000
CIRCLE_SAMPLES = 3_600  # 0.1° resolution: a band of m = 0.05 rad is 29 samples wide
BAND_NAME = "margin band (no class wins with margin)"
MISCLASSIFIED_NAME = "misclassified (test-time prediction)"


def _subscript(k: int) -> str:
    return str(k).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def _weights_3d_shape(weights: np.ndarray) -> np.ndarray:
    """(C, K, d): one or K (sub-centre) weight vectors per class."""
    w = np.asarray(weights, dtype=np.float64)
    return w[:, None, :] if w.ndim == 2 else w


def _scatter_cls(n_points: int):
    return go.Scattergl if n_points > WEBGL_ABOVE else go.Scatter


def _misclassified_mask(features, labels, weights, loss, bias=None) -> np.ndarray:
    if len(labels) == 0:
        return np.zeros(0, dtype=bool)
    return predicted_labels(features, weights, loss=loss, bias=bias) != labels


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


def _spoke_path(directions: np.ndarray, length: float) -> np.ndarray:
    """(2K+1, d) path origin → tip₁ → origin → tip₂ … (sub-centres share one trace)."""
    tips = normalize_rows(directions) * length
    path = np.zeros((2 * len(tips) + 1, directions.shape[1]))
    path[1::2] = tips
    return path


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
    labels = np.asarray(labels, dtype=np.int64)
    w = _weights_3d_shape(weights)
    n_classes = w.shape[0]
    colors, legend = class_colors(n_classes), class_names(n_classes, names)
    region = region_labels(circle_directions(CIRCLE_SAMPLES), weights, loss=loss, s=s, **margin)
    runs = circle_runs(region)
    unit = normalize_rows(features)
    if jitter > 0:
        unit = unit * np.random.default_rng(0).uniform(1 - jitter, 1 + jitter, (len(unit), 1))
    wrong = _misclassified_mask(features, labels, weights, loss, bias)
    scatter = _scatter_cls(len(labels))

    traces: list = []
    for k in range(n_classes):
        x, y = _fan_polygon([r for r in runs if r.label == k], 1.12)
        traces.append(
            go.Scatter(
                x=f32(x), y=f32(y), fill="toself", fillcolor=rgba(colors[k], 0.16), mode="none",
                name=f"region of {legend[k]}", legendgroup=f"class{k}", showlegend=False,
                hoverinfo="skip",
            )
        )  # fmt: skip
    x, y = _fan_polygon([r for r in runs if r.label == BAND], 1.12)
    traces.append(
        go.Scatter(
            x=f32(x), y=f32(y), fill="toself", fillcolor=rgba(BAND_GREY, 0.55), mode="none",
            name=BAND_NAME, hoverinfo="skip", showlegend=loss not in PLAIN_ARGMAX,
        )
    )  # fmt: skip
    ring = circle_directions(361 - 1)
    traces.append(
        go.Scatter(
            x=f32(np.append(ring[:, 0], 1.0)), y=f32(np.append(ring[:, 1], 0.0)), mode="lines",
            line={"color": "#555555", "width": 1}, name="unit circle", showlegend=False,
            hoverinfo="skip",
        )
    )  # fmt: skip
    for k in range(n_classes):
        path = _spoke_path(w[k], 1.3)
        text = [""] * len(path)
        text[1] = f"W{_subscript(k)}"
        traces.append(
            go.Scatter(
                x=f32(path[:, 0]), y=f32(path[:, 1]), mode="lines+text", text=text,
                textposition="top center", line={"color": colors[k], "width": 3},
                name=f"weight W{_subscript(k)} of {legend[k]}", legendgroup=f"class{k}",
                showlegend=False, hoverinfo="name",
            )
        )  # fmt: skip
    for k in range(n_classes):
        pts = unit[labels == k]
        traces.append(
            scatter(
                x=f32(pts[:, 0]), y=f32(pts[:, 1]), mode="markers", name=legend[k],
                legendgroup=f"class{k}",
                marker={"color": colors[k], "size": 6, "line": {"color": "white", "width": 0.5}},
                hovertemplate=f"{legend[k]}<extra></extra>",
            )
        )  # fmt: skip
    pts = unit[wrong]
    traces.append(
        scatter(
            x=f32(pts[:, 0]), y=f32(pts[:, 1]), mode="markers", name=MISCLASSIFIED_NAME,
            marker={"color": MISCLASSIFIED, "size": 7, "symbol": "x-thin",
                    "line": {"color": MISCLASSIFIED, "width": 1.5}},
            hoverinfo="name",
        )
    )  # fmt: skip
    axis = {"range": [-1.45, 1.45], "zeroline": False, "constrain": "domain"}
    layout = base_layout(
        title or f"Features on the unit circle — {margin_label(loss, s, **margin)}",
        "Shaded: the class that wins WITH margin in each direction; grey: margin bands "
        "(no class wins by the margin); spokes: class weights W_j.",
        xaxis={**axis, "title": {"text": "x̂₁ (normalised feature, dim 1)"}},
        yaxis={
            **axis,
            "title": {"text": "x̂₂ (normalised feature, dim 2)"},
            "scaleanchor": "x",
            "scaleratio": 1,
        },
        legend={"itemsizing": "constant", "title": {"text": "Classes"}},
    )
    return go.Figure(traces, layout)


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
    labels = np.asarray(labels, dtype=np.int64)
    w = _weights_3d_shape(weights)
    n_classes = w.shape[0]
    colors, legend = class_colors(n_classes), class_names(n_classes, names)
    extent = float(np.max(np.abs(x))) if x.size else 0.0
    extent = 1.15 * (extent if math.isfinite(extent) and extent > 0 else 1.0)
    axis_values = np.linspace(-extent, extent, grid)
    gx, gy = np.meshgrid(axis_values, axis_values)
    grid_xy = np.stack([gx.ravel(), gy.ravel()], axis=1)
    if loss in ("softmax", "center"):
        region = raw_plane_regions(grid_xy, np.asarray(weights).reshape(n_classes, -1), bias)
    else:
        region = region_labels(grid_xy, weights, loss=loss, s=s, **margin)
    wrong = _misclassified_mask(x, labels, weights, loss, bias)
    scatter = _scatter_cls(len(labels))
    w_norm = float(np.max(np.linalg.norm(w, axis=-1))) if w.size else 0.0
    w_scale = 0.9 * extent / w_norm if w_norm > 0 else 1.0

    traces: list = [
        go.Heatmap(
            x=f32(axis_values), y=f32(axis_values), z=f32((region + 1).reshape(grid, grid)),
            zmin=-0.5, zmax=n_classes + 0.5, showscale=False, opacity=0.35, hoverinfo="skip",
            colorscale=discrete_colorscale([BAND_GREY] + colors), name="decision regions",
        )
    ]  # fmt: skip
    if loss not in PLAIN_ARGMAX:
        traces.append(empty_legend_entry(BAND_NAME, BAND_GREY))
    for k in range(n_classes):
        path = _spoke_path(w[k], 1.0) * (np.linalg.norm(w[k], axis=-1).max() * w_scale)
        traces.append(
            go.Scatter(
                x=f32(path[:, 0]), y=f32(path[:, 1]), mode="lines+markers",
                marker={"symbol": "arrow", "angleref": "previous", "color": colors[k],
                        "size": f32(np.arange(len(path)) % 2 * 12)},  # arrowheads at tips
                line={"color": colors[k], "width": 3}, legendgroup=f"class{k}",
                name=f"weight W{_subscript(k)} of {legend[k]}", showlegend=False,
                hoverinfo="name",
            )
        )  # fmt: skip
    for k in range(n_classes):
        pts = x[labels == k]
        traces.append(
            scatter(
                x=f32(pts[:, 0]), y=f32(pts[:, 1]), mode="markers", name=legend[k],
                legendgroup=f"class{k}",
                marker={"color": colors[k], "size": 5, "line": {"color": "white", "width": 0.5}},
                hovertemplate=f"{legend[k]}<extra></extra>",
            )
        )  # fmt: skip
    pts = x[wrong]
    traces.append(
        scatter(
            x=f32(pts[:, 0]), y=f32(pts[:, 1]), mode="markers", name=MISCLASSIFIED_NAME,
            marker={"color": MISCLASSIFIED, "size": 7, "symbol": "x-thin",
                    "line": {"color": MISCLASSIFIED, "width": 1.5}},
            hoverinfo="name",
        )
    )  # fmt: skip
    with_bias = bias is not None and loss in ("softmax", "center")
    subtitle = (
        "Before normalisation. Shaded: the predicted class"
        + (" (softmax with bias: straight boundaries off the origin)" if with_bias else "")
        + f"; arrows: class weights W_j, drawn ×{w_scale:.2g}."
    )
    axis = {"range": [-extent, extent], "zeroline": True, "constrain": "domain"}
    layout = base_layout(
        title or f"Raw 2-D features — {margin_label(loss, s, **margin)}",
        subtitle,
        xaxis={**axis, "title": {"text": "feature x₁ (raw)"}},
        yaxis={**axis, "title": {"text": "feature x₂ (raw)"}, "scaleanchor": "x", "scaleratio": 1},
        legend={"itemsizing": "constant", "title": {"text": "Classes"}},
    )
    return go.Figure(traces, layout)


def band_width_hint(loss: str, **margin) -> float:
    """Rough angular width of the band, only to pick the mesh resolution."""
    angle = angular_margin(loss, **margin)
    if angle is not None:
        return angle
    if loss in ("cosface", "combined"):
        return float(margin.get("m3", 0.0))
    return 0.0


def _sphere_traces(
    points: np.ndarray,
    labels: np.ndarray,
    w: np.ndarray,
    wrong: np.ndarray,
    face_labels: np.ndarray | None,
    subdivisions: int,
    colors: list[str],
    legend: list[str],
    show_band: bool,
) -> list:
    verts, faces = icosphere(subdivisions)
    n_classes = len(colors)
    if face_labels is None:  # a projection: no honest regions to paint, a plain sphere
        mesh_values = np.zeros(len(faces))
        scale = discrete_colorscale(["#e8e8e8"])
        cmax = 0.5
    else:
        mesh_values = face_labels + 1.0
        scale = discrete_colorscale([BAND_GREY] + [lighten(c, 0.35) for c in colors])
        cmax = n_classes + 0.5
    traces: list = [
        go.Mesh3d(
            x=f32(verts[:, 0]), y=f32(verts[:, 1]), z=f32(verts[:, 2]),
            i=faces[:, 0], j=faces[:, 1], k=faces[:, 2],
            intensity=f32(mesh_values), intensitymode="cell", colorscale=scale,
            cmin=-0.5, cmax=cmax, showscale=False, hoverinfo="skip", name="decision regions",
            flatshading=True, lighting={"ambient": 0.85, "diffuse": 0.2, "specular": 0.05},
        )
    ]  # fmt: skip
    if show_band:
        traces.append(empty_legend_entry(BAND_NAME, BAND_GREY, three_d=True))
    for k in range(n_classes):
        path = _spoke_path(w[k], 1.35)
        text = [""] * len(path)
        text[1] = f"W{_subscript(k)}"
        traces.append(
            go.Scatter3d(
                x=f32(path[:, 0]), y=f32(path[:, 1]), z=f32(path[:, 2]), mode="lines+text",
                text=text, line={"color": colors[k], "width": 7}, legendgroup=f"class{k}",
                name=f"weight W{_subscript(k)} of {legend[k]}", showlegend=False,
                hoverinfo="name",
            )
        )  # fmt: skip
    lifted = points * 1.015  # just above the mesh, so the surface does not hide them
    for k in range(n_classes):
        pts = lifted[labels == k]
        traces.append(
            go.Scatter3d(
                x=f32(pts[:, 0]), y=f32(pts[:, 1]), z=f32(pts[:, 2]), mode="markers",
                name=legend[k], legendgroup=f"class{k}", marker={"color": colors[k], "size": 2.5},
                hovertemplate=f"{legend[k]}<extra></extra>",
            )
        )  # fmt: skip
    pts = lifted[wrong] * 1.005
    traces.append(
        go.Scatter3d(
            x=f32(pts[:, 0]), y=f32(pts[:, 1]), z=f32(pts[:, 2]), mode="markers",
            name=MISCLASSIFIED_NAME, marker={"color": MISCLASSIFIED, "size": 3, "symbol": "x"},
            hoverinfo="name",
        )
    )  # fmt: skip
    return traces


def _sphere_layout(title: str, subtitle: str, axis_prefix: str = "x̂") -> dict:
    def axis(k: int) -> dict:
        return {"range": [-1.45, 1.45], "title": {"text": f"{axis_prefix}{_subscript(k)}"}}

    return base_layout(
        title,
        subtitle,
        scene={
            "xaxis": axis(1),
            "yaxis": axis(2),
            "zaxis": axis(3),
            "aspectmode": "cube",  # equal aspect: the sphere must look round
            "uirevision": "marginlab-sphere",  # the user's camera survives updates
            "camera": {"eye": {"x": 1.35, "y": 1.35, "z": 0.9}},
        },
        legend={"itemsizing": "constant", "title": {"text": "Classes"}},
        margin={"l": 0, "r": 0, "t": 80, "b": 0},
    )


def sphere_figure(
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    *,
    loss: str,
    s: float,
    names: Sequence[str] | None = None,
    subdivisions: int | None = None,
    bias: np.ndarray | None = None,
    title: str | None = None,
    **margin,
) -> go.Figure:
    """3-D features on the unit sphere over an icosphere painted per face by region.

    Faces: the class that wins WITH margin at the face centre (region_labels), grey in margin
    bands. Lines: class weight directions. The icosphere is refined (5 subdivisions) for
    bands narrower than 0.1 rad unless `subdivisions` is given.
    """
    labels = np.asarray(labels, dtype=np.int64)
    w = _weights_3d_shape(weights)
    n_classes = w.shape[0]
    if subdivisions is None:
        subdivisions = subdivisions_for_band(band_width_hint(loss, **margin))
    faces = sphere_face_labels(weights, loss=loss, s=s, subdivisions=subdivisions, **margin)
    traces = _sphere_traces(
        normalize_rows(features),
        labels,
        w,
        _misclassified_mask(features, labels, weights, loss, bias),
        faces,
        subdivisions,
        class_colors(n_classes),
        class_names(n_classes, names),
        loss not in PLAIN_ARGMAX,
    )
    layout = _sphere_layout(
        title or f"Features on the unit sphere — {margin_label(loss, s, **margin)}",
        "Coloured: the class that wins WITH margin in each direction; grey: margin bands; "
        "lines: class weights W_j. Drag to rotate.",
    )
    return go.Figure(traces, layout)


def projection_figure(
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    *,
    loss: str,
    names: Sequence[str] | None = None,
    projection: Projection3D | None = None,
    title: str | None = None,
    **margin,
) -> go.Figure:
    """d > 3: normalised features and weights PCA-projected to 3-D and put back on the sphere.

    No regions are painted: regions of the projected weights are not the regions of the d-D
    classifier, and a picture that disagrees with the loss would teach something false.
    Misclassification is judged in d-D. Pass `projection` (from geometry.pca_to_3d) to keep
    one fixed view across the frames of a replay. `margin` keywords only label the title.
    """
    labels = np.asarray(labels, dtype=np.int64)
    w = _weights_3d_shape(weights)
    n_classes, dim = w.shape[0], w.shape[-1]
    proj = projection if projection is not None else pca_to_3d(features)
    points = proj.project(features)
    traces = _sphere_traces(
        points,
        labels,
        proj.project(w),
        _misclassified_mask(features, labels, weights, loss),
        None,
        3,
        class_colors(n_classes),
        class_names(n_classes, names),
        False,
    )
    kept = 100.0 * float(proj.explained.sum())
    layout = _sphere_layout(
        title or f"PCA projection of {dim}-D features — {margin_label(loss, **margin)}",
        f"A projection, not the feature space: the 3 axes keep {kept:.0f}% of the normalised "
        "features' second moment, so angles here are only approximate. Lines: class weights.",
        axis_prefix="PC",
    )
    return go.Figure(traces, layout)
