"""3-D feature-space views: the unit sphere painted per face by region, and a PCA projection of
d > 3 features. Arrays in, plotly Figure out; regions come from geometry.region_labels (hence
from the one margin function, DESIGN.md §3). Fixed trace lists, as in figures.views.
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
    subscript,
    weight_spokes,
)
from marginlab.figures.style import (
    BAND_GREY,
    CLASS_LEGEND,
    angular_margin,
    at_chosen_norm,
    base_layout,
    discrete_colorscale,
    empty_legend_entry,
    f32,
    fast_figure,
    lighten,
    margin_label,
    trace,
)
from marginlab.geometry.angles import normalize_rows
from marginlab.geometry.regions import (
    PLAIN_ARGMAX,
    Projection3D,
    icosphere,
    pca_to_3d,
    sphere_face_labels,
    subdivisions_for_band,
)

# Ten classes spread over the sphere are about 66° apart (LOSSES.md): the spacing at which a
# margin that is no angle (CosFace, combined, SphereFace) is turned into a band width.
_TYPICAL_SPACING = math.radians(65.7)


def band_width_hint(loss: str, **margin) -> float:
    """Rough angular width of the band, only to pick the mesh resolution."""
    angle = angular_margin(loss, _TYPICAL_SPACING, **margin)
    return 0.0 if angle is None else angle


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
        trace(
            "mesh3d",
            x=f32(verts[:, 0]),
            y=f32(verts[:, 1]),
            z=f32(verts[:, 2]),
            i=faces[:, 0],
            j=faces[:, 1],
            k=faces[:, 2],
            intensity=f32(mesh_values),
            intensitymode="cell",
            colorscale=scale,
            cmin=-0.5,
            cmax=cmax,
            showscale=False,
            hoverinfo="skip",
            name="decision regions",
            flatshading=True,
            lighting={"ambient": 0.85, "diffuse": 0.2, "specular": 0.05},
        )
    ]
    if show_band:
        traces.append(empty_legend_entry(BAND_NAME, BAND_GREY, three_d=True))
    spokes = [spoke_path(w[k], 1.35) for k in range(n_classes)]
    traces += weight_spokes(spokes, colors, legend, three_d=True)
    lifted = points * 1.015  # just above the mesh, so the surface does not hide them
    crosses = lifted[wrong] * 1.005  # and the crosses above the points
    return traces + class_points(lifted, labels, crosses, "scatter3d", colors, legend, size=2.5)


def _sphere_layout(title: str, subtitle: str, axis_prefix: str = "x̂") -> dict:
    def axis(k: int) -> dict:
        return {"range": [-1.45, 1.45], "title": {"text": f"{axis_prefix}{subscript(k)}"}}

    return base_layout(
        title,
        subtitle,
        scene={
            "xaxis": axis(1),
            "yaxis": axis(2),
            "zaxis": axis(3),
            "aspectmode": "cube",  # equal aspect: the sphere must look round
            "uirevision": "marginlab-sphere",  # the user's camera survives updates
            "camera": {"eye": {"x": 1.0, "y": 1.0, "z": 0.65}},  # close: the sphere fills the panel
        },
        legend=CLASS_LEGEND,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
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
    labels, w, colors, legend = class_setup(features, labels, weights, names, 3, "sphere_figure")
    if subdivisions is None:
        subdivisions = subdivisions_for_band(band_width_hint(loss, **margin))
    drawn, norm_note = at_chosen_norm(margin, loss, features)
    faces = sphere_face_labels(weights, loss=loss, s=s, subdivisions=subdivisions, **drawn)
    traces = _sphere_traces(
        normalize_rows(features),
        labels,
        w,
        misclassified_mask(features, labels, weights, loss, bias),
        faces,
        subdivisions,
        colors,
        legend,
        loss not in PLAIN_ARGMAX,
    )
    layout = _sphere_layout(
        title or f"Features on the unit sphere — {margin_label(loss, s, **margin)}",
        "Coloured: the class that wins WITH margin in each direction; grey: margin bands; "
        "lines: class weights W_j. Drag to rotate." + norm_note,
    )
    return fast_figure(traces, layout)


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
    labels, w, colors, legend = class_setup(
        features, labels, weights, names, None, "projection_figure"
    )
    proj = projection if projection is not None else pca_to_3d(features)
    points = proj.project(features)
    traces = _sphere_traces(
        points,
        labels,
        proj.project(w),
        misclassified_mask(features, labels, weights, loss),
        None,
        3,
        colors,
        legend,
        False,
    )
    kept = 100.0 * float(proj.explained.sum())
    layout = _sphere_layout(
        title or f"PCA projection of {w.shape[-1]}-D features — {margin_label(loss, **margin)}",
        f"A projection, not the feature space: the 3 axes keep {kept:.0f}% of the normalised "
        "features' second moment, so angles here are only approximate. Lines: class weights.",
        axis_prefix="PC",
    )
    return fast_figure(traces, layout)
