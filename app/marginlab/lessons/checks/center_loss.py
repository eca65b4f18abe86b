"""Lesson 6: center loss makes the classes compact."""

from __future__ import annotations

import numpy as np

from marginlab.lessons.checks.common import (
    ClaimResult,
    Progress,
    final_snapshot,
    mean_norm,
    train_lockstep,
)
from marginlab.lessons.parser import Lesson


def relative_spread(features: np.ndarray, labels: np.ndarray) -> float:
    """mean ‖x − c_y‖ / mean ‖x‖, with c_y the mean of class y's features: how compact the
    classes are relative to the scale of the features (so a model cannot win by shrinking)."""
    x = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    centres = np.zeros((labels.max() + 1, x.shape[1]))
    np.add.at(centres, labels, x)
    centres /= np.maximum(np.bincount(labels), 1)[:, None]
    return float(np.linalg.norm(x - centres[labels], axis=1).mean() / mean_norm(x))


def center_loss_compacts(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """Softmax vs softmax + center loss (Wen et al., ECCV 2016, Eq. 2–4) in lock-step; the
    centres c_y here are the probe features' class means, not the loss's learned centres."""
    baseline = str(lesson.claim.params["baseline"])
    with_center = str(lesson.claim.params["with_center"])
    what = f"{baseline} and {with_center}"
    comparison = train_lockstep(lesson, [baseline, with_center], progress, what)
    labels = comparison.data.probe_labels
    spread = {
        name: relative_spread(final_snapshot(run).features, labels)
        for name, run in comparison.runs.items()
    }
    accuracy = {name: final_snapshot(run).test_acc for name, run in comparison.runs.items()}
    measured = {f"mean ‖x − c_y‖ / mean ‖x‖ {name}": value for name, value in spread.items()}
    measured.update({f"test accuracy {name}": value for name, value in accuracy.items()})
    passed = spread[with_center] < spread[baseline]
    return ClaimResult(
        passed,
        measured,
        f"Relative spread {spread[with_center]:.3f} with center loss vs {spread[baseline]:.3f} "
        "without.",
    )
