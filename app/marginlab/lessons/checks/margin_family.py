"""Lesson 4: the margin losses pull features closer to their class weights."""

from __future__ import annotations

import math

from marginlab.geometry.angles import target_angles
from marginlab.lessons.checks.common import (
    ClaimResult,
    Progress,
    final_snapshot,
    lesson_steps,
    lockstep,
    quiet,
    train,
)
from marginlab.lessons.parser import Lesson


def margins_tighten_classes(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """Mean θ_y of the probe (the angle of each feature to its own class weight) after lock-step
    training: every margin loss named must end below the baseline (CosFace, Wang et al. CVPR
    2018; ArcFace, Deng et al. CVPR 2019, Table 3's "Intra" is the same idea)."""
    progress = progress or quiet
    baseline = str(lesson.claim.params["baseline"])
    margin_losses = [str(loss) for loss in lesson.claim.params["margin_losses"]]
    comparison = lockstep(lesson, [baseline, *margin_losses])
    train(comparison, lesson_steps(lesson), progress, ", ".join([baseline, *margin_losses]))
    labels = comparison.data.probe_labels
    theta = {}
    for name, run in comparison.runs.items():
        snap = final_snapshot(run)
        theta[name] = math.degrees(float(target_angles(snap.features, labels, snap.weights).mean()))
    measured = {f"mean θ_y {name} (°)": value for name, value in theta.items()}
    passed = all(theta[loss] < theta[baseline] for loss in margin_losses)
    return ClaimResult(
        passed,
        measured,
        "Mean angle to the own class weight: "
        + ", ".join(f"{name} {value:.1f}°" for name, value in theta.items())
        + ".",
    )
