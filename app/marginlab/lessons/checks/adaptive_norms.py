"""Lesson 8: the feature norm carries how hard a digit is, for MagFace and for ArcFace alike."""

from __future__ import annotations

import numpy as np

from marginlab.geometry.regions import predicted_labels
from marginlab.lessons.checks.common import (
    ClaimResult,
    Progress,
    final_snapshot,
    train_lockstep,
)
from marginlab.lessons.parser import Lesson


def accuracy_by_norm_quarter(
    features: np.ndarray, labels: np.ndarray, predictions: np.ndarray
) -> tuple[float, float]:
    """Test accuracy of the quarter of samples with the shortest raw features, and of the
    quarter with the longest (the norm before normalisation, ‖x‖)."""
    norms = np.linalg.norm(np.asarray(features, dtype=np.float64), axis=1)
    right = np.asarray(predictions) == np.asarray(labels)
    low, high = np.quantile(norms, [0.25, 0.75])
    return float(right[norms <= low].mean()), float(right[norms >= high].mean())


def norm_tracks_difficulty(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """Each of the lesson's losses in lock-step; on the probe's test digits, the accuracy of
    the longest-feature quarter must beat the shortest-feature quarter's by `gap` points."""
    gap = float(lesson.claim.params["gap"])
    losses = list(lesson.preset.losses)
    comparison = train_lockstep(lesson, losses, progress, " and ".join(losses))
    labels = comparison.data.probe_labels
    measured: dict[str, float] = {}
    passed = True
    for name, run in comparison.runs.items():
        snap = final_snapshot(run)
        predictions = predicted_labels(snap.features, snap.region_weights, loss=run.config.loss)
        low, high = accuracy_by_norm_quarter(snap.features, labels, predictions)
        measured[f"{name}: accuracy, shortest quarter"] = low
        measured[f"{name}: accuracy, longest quarter"] = high
        measured[f"{name}: test accuracy"] = snap.test_acc
        passed = passed and 100 * (high - low) >= gap
    parts = [
        f"{name} {100 * measured[f'{name}: accuracy, shortest quarter']:.1f} % vs "
        f"{100 * measured[f'{name}: accuracy, longest quarter']:.1f} %"
        for name in comparison.runs
    ]
    return ClaimResult(
        passed,
        measured,
        "Shortest vs longest quarter of features: "
        + "; ".join(parts)
        + f" (the claim asks for a gap of at least {gap:g} points in each).",
    )
