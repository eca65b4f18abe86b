"""What the feature views draw alike, in 2-D and 3-D: the shared start of every builder (labels,
weights per class, colours, names, a readable dimension check), the test-time misclassification,
the class weights as spokes and the samples as class markers with crosses on the misclassified.
The circle and raw plane (figures.views) and the sphere and projection (figures.sphere) use them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from marginlab.figures.style import (
    MISCLASSIFIED,
    class_colors,
    class_names,
    coords,
    f32,
    trace,
)
from marginlab.geometry.angles import normalize_rows
from marginlab.geometry.regions import predicted_labels

BAND_NAME = "margin band (no class wins with margin)"
MISCLASSIFIED_NAME = "misclassified (test-time prediction)"


def subscript(k: int) -> str:
    return str(k).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def weights_per_class(weights: np.ndarray) -> np.ndarray:
    """(C, K, d): one or K (sub-centre) weight vectors per class."""
    w = np.asarray(weights, dtype=np.float64)
    return w[:, None, :] if w.ndim == 2 else w


def check_dims(features: np.ndarray, weights: np.ndarray, dim: int | None, view: str) -> None:
    """A readable error instead of an IndexError deep inside a builder."""
    f_dim, w_dim = np.shape(features)[-1], np.shape(weights)[-1]
    if f_dim != w_dim or (dim is not None and f_dim != dim):
        need = f"{dim}-D " if dim is not None else "equal-dimension "
        raise ValueError(
            f"{view} needs {need}features and weights, got features {np.shape(features)} "
            f"and weights {np.shape(weights)}"
        )


def class_setup(
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    names: Sequence[str] | None,
    dim: int | None,
    view: str,
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """What every feature view starts from: int labels, (C, K, d) weights, the class colours
    and legend names; a readable error where the dimensions do not fit the view."""
    labels = np.asarray(labels, dtype=np.int64)
    check_dims(features, weights, dim, view)
    w = weights_per_class(weights)
    return labels, w, class_colors(w.shape[0]), class_names(w.shape[0], names)


def misclassified_mask(features, labels, weights, loss, bias=None) -> np.ndarray:
    if len(labels) == 0:
        return np.zeros(0, dtype=bool)
    return predicted_labels(features, weights, loss=loss, bias=bias) != labels


def spoke_path(directions: np.ndarray, length: float) -> np.ndarray:
    """(2K+1, d) path origin → tip₁ → origin → tip₂ … (sub-centres share one trace)."""
    tips = normalize_rows(directions) * length
    path = np.zeros((2 * len(tips) + 1, directions.shape[1]))
    path[1::2] = tips
    return path


def weight_spokes(
    paths: Sequence[np.ndarray],
    colors: Sequence[str],
    legend: Sequence[str],
    *,
    three_d: bool = False,
    arrows: bool = False,
) -> list[dict]:
    """One trace per class along its `spoke_path`: the weights of the circle, the sphere and
    the raw plane, drawn the same way. Labelled "W_k" at the first tip, or with `arrows` an
    arrowhead at every tip (the raw plane, where lengths matter); lines are wider in 3-D, where
    they are seen through the mesh."""
    traces = []
    for k, path in enumerate(paths):
        if arrows:
            heads = {"symbol": "arrow", "angleref": "previous", "color": colors[k]}
            tips = {"marker": {**heads, "size": f32(np.arange(len(path)) % 2 * 12)}}
            style = {"mode": "lines+markers", **tips}
        else:
            text = [""] * len(path)
            text[1] = f"W{subscript(k)}"
            style = {"mode": "lines+text", "text": text}
            style.update({} if three_d else {"textposition": "top center"})
        traces.append(
            trace(
                "scatter3d" if three_d else "scatter",
                **coords(path),
                **style,
                line={"color": colors[k], "width": 7 if three_d else 3},
                name=f"weight W{subscript(k)} of {legend[k]}",
                legendgroup=f"class{k}",
                showlegend=False,
                hoverinfo="name",
            )
        )
    return traces


def class_points(
    points: np.ndarray,
    labels: np.ndarray,
    crosses: np.ndarray,
    kind: str,
    colors: Sequence[str],
    legend: Sequence[str],
    *,
    size: float,
) -> list[dict]:
    """One marker trace per class, then the misclassified samples (`crosses`, their points)
    marked with crosses. In 3-D ("scatter3d") the markers go without the white outline, which
    the mesh behind them makes a blur, and the crosses are plain."""
    three_d = kind == "scatter3d"
    traces = []
    for k, (color, name) in enumerate(zip(colors, legend, strict=True)):
        marker = {"color": color, "size": size}
        if not three_d:
            marker["line"] = {"color": "white", "width": 0.5}
        traces.append(
            trace(
                kind,
                **coords(points[labels == k]),
                mode="markers",
                name=name,
                legendgroup=f"class{k}",
                marker=marker,
                hovertemplate=f"{name}<extra></extra>",
            )
        )
    cross = {"color": MISCLASSIFIED, "size": 3, "symbol": "x"}
    if not three_d:
        cross.update(size=5, symbol="x-thin", line={"color": MISCLASSIFIED, "width": 1})
    traces.append(
        trace(
            kind,
            **coords(crosses),
            mode="markers",
            name=MISCLASSIFIED_NAME,
            marker=cross,
            hoverinfo="name",
        )
    )
    return traces
