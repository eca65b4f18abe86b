"""The figures of one run at one snapshot, drawn with the hyper-parameters asked for NOW.

The lab redraws these whenever s or m moves: the regions, bands and curves come from the
snapshot's weights and the requested margin (not the warm-up's partial one), so a paused
run shows at once what the new margin means for the current weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from marginlab.figures import (
    circle_figure,
    projection_figure,
    raw_feature_figure,
    sphere_figure,
    target_logit_figure,
    target_probability_figure,
    training_curves_figure,
)
from marginlab.figures.adaptive import (
    adaptive_target_figure,
    norm_margin_figure,
    running_state_figure,
)
from marginlab.figures.leads import lead_histogram_figure, lowest_class_text, summary_for
from marginlab.figures.loss_colors import loss_color
from marginlab.figures.style import LOSS_NAMES, margin_label, margin_of
from marginlab.geometry.angles import target_angles
from marginlab.losses.adaptive_curves import NORM_DEPENDENT, STATE_LABELS
from marginlab.losses.registry import loss_spec
from marginlab.training.snapshots import Snapshot

VIEWS: tuple[str, ...] = ("view", "raw", "target_logit", "theta_hist", "curves")
# The metrics row's lead columns (the strip reads them by these names).
MEDIAN_LEAD = "median lead °"
MARGIN_MET = "margin met %"
LOWEST_CLASS = "margin met, lowest class"


def view_kwargs(snap: Snapshot, labels: np.ndarray, params: Mapping[str, Any]) -> dict:
    """The keyword arguments the feature views take for this snapshot and these params."""
    return {
        "features": snap.features,
        "labels": labels,
        "weights": snap.region_weights,  # all sub-centres: regions and predictions as trained
        "loss": params["loss"],
        "s": float(params.get("s", 1.0)),
        **margin_of(params, snap.state),
    }


def embedding_figure(
    snap: Snapshot,
    labels: np.ndarray,
    params: Mapping[str, Any],
    *,
    names: Sequence[str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Circle (2-D), sphere (3-D) or a labelled 3-D projection (more dimensions)."""
    kwargs = view_kwargs(snap, labels, params)
    dim = snap.features.shape[1]
    if dim == 2:
        return circle_figure(**kwargs, names=names, jitter=0.04, title=title)
    if dim == 3:
        return sphere_figure(**kwargs, names=names, title=title)
    return projection_figure(**kwargs, names=names, title=title)


def raw_figure(
    snap: Snapshot, labels: np.ndarray, params: Mapping[str, Any], *, names=None
) -> go.Figure | None:
    """The unnormalised feature plane (2-D runs only)."""
    if snap.features.shape[1] != 2:
        return None
    return raw_feature_figure(**view_kwargs(snap, labels, params), names=names)


def logit_figure(snap: Snapshot, labels: np.ndarray, params: Mapping[str, Any]) -> go.Figure:
    """Target logit curve at the current parameters with the probe's θ_y histogram."""
    spec = {"loss": params["loss"], **margin_of(params, snap.state)}
    spec["label"] = margin_label(params["loss"], params.get("s"), **margin_of(params))
    theta_y = target_angles(snap.features, labels, snap.region_weights)  # nearest of K
    return target_logit_figure(spec, theta_y=theta_y)


def angle_figure(
    snap: Snapshot, labels: np.ndarray, params: Mapping[str, Any], *, names=None
) -> go.Figure:
    """Histogram of the probe's leads with a line at the requested margin (figures.leads)."""
    return lead_histogram_figure(**view_kwargs(snap, labels, params), names=names)


def probability_figure(snap: Snapshot, params: Mapping[str, Any], *, n_classes: int) -> go.Figure:
    """Probability of the true class vs θ_y at the current parameters; the original SphereFace
    is drawn at the snapshot's median ‖x‖, its scale (the other losses use s)."""
    norms = np.linalg.norm(np.asarray(snap.features, dtype=np.float64), axis=1)
    return target_probability_figure(
        params["loss"],
        float(params.get("s", 1.0)),
        n_classes=n_classes,
        feature_norm=float(np.median(norms)) if len(norms) else None,
        **margin_of(params),
    )


def curves_figure(history: Sequence[Snapshot] | Mapping[str, Sequence[Snapshot]]) -> go.Figure:
    """Loss, accuracy and Table-3 angles over the snapshot history (one run or several)."""
    if isinstance(history, Mapping):
        # Runs come named by their loss's label: each is drawn in its loss's colour.
        loss_of = {label: loss for loss, label in LOSS_NAMES.items()}
        colors = {name: loss_color(loss_of.get(name, name)) for name in history}
        runs = {k: [s.metrics() for s in v] for k, v in history.items()}
        return training_curves_figure(runs, colors=colors)
    return training_curves_figure([s.metrics() for s in history])


def metrics_row(
    snap: Snapshot,
    labels: np.ndarray,
    params: Mapping[str, Any],
    *,
    names: Sequence[str] | None = None,
) -> dict[str, float | int | str]:
    """One row of the metrics table: accuracies in %, angles in degrees, and the probe's
    leads against the margin asked for now (geometry.leads: median lead, margin met)."""
    summary = summary_for(**view_kwargs(snap, labels, params))
    return {
        "step": snap.step,
        "training loss": round(float(snap.loss), 4),
        "train acc %": round(100 * snap.train_acc, 1),
        "test acc %": round(100 * snap.test_acc, 1),
        "W-EC °": round(math.degrees(snap.stats["w_ec"]), 1),
        "W-Inter °": round(math.degrees(snap.stats["w_inter"]), 1),
        "Intra °": round(math.degrees(snap.stats["intra"]), 1),
        "Inter °": round(math.degrees(snap.stats["inter"]), 1),
        MEDIAN_LEAD: round(math.degrees(summary.median), 1),
        MARGIN_MET: round(100 * summary.met_fraction, 1),
        LOWEST_CLASS: lowest_class_text(summary, names),
        # The running state of the post-2020 heads (AdaCos's s, CurricularFace's t, ...).
        **{state_label(params["loss"], k): round(v, 4) for k, v in snap.state.items()},
    }


def state_label(loss: str, name: str) -> str:
    """The display name of one running statistic of `loss` (losses/adaptive_curves)."""
    return STATE_LABELS.get(loss, {}).get(name, name)


def adaptive_figures(
    history: Sequence[Snapshot], snap: Snapshot, labels: np.ndarray, params: Mapping[str, Any]
) -> list[tuple[str, go.Figure]]:
    """The figures of a margin that adapts (issue 15), by key; empty for the other losses:
    the margin vs ‖x‖ over the probe's norms, the logits vs θ (target family, hard-negative
    curve, ±σ halo) over the probe's θ_y, and the running state over the history."""
    loss = params["loss"]
    if not loss_spec(loss).adaptive:
        return []
    values = {**params, **snap.state}
    label = margin_label(loss, params.get("s"), **margin_of(params, snap.state))
    theta_y = target_angles(snap.features, labels, snap.region_weights)
    figures = [("family", adaptive_target_figure(loss, values, theta_y=theta_y, state=snap.state,
                                                 label=label))]  # fmt: skip
    if loss in NORM_DEPENDENT:
        norms = np.linalg.norm(np.asarray(snap.features, dtype=np.float64), axis=1)
        figures.append(("norms", norm_margin_figure(loss, values, norms=norms, state=snap.state)))
    if loss in STATE_LABELS:
        steps = np.array([s.step for s in history], dtype=np.float64)
        series = {name: np.array([s.state.get(name, np.nan) for s in history])
                  for name in STATE_LABELS[loss]}  # fmt: skip
        figures.append(("state", running_state_figure(loss, steps, series, label=label)))
    return figures
