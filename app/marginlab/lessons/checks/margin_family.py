"""Lesson 4: the margin losses pull features closer to their class weights."""

from __future__ import annotations

import math

from marginlab.geometry.angles import target_angles
from marginlab.lessons.checks.common import (
    ClaimResult,
    Progress,
    final_snapshot,
    train_lockstep,
)
from marginlab.lessons.parser import Lesson


def margins_tighten_classes(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """Mean θ_y of the probe (the angle of each feature to its own class weight) after lock-step
    training: every margin loss named must end below the baseline by at least `min_gap_deg`
    degrees, and by at most `max_gap_deg` if the claim states an upper bound (CosFace, Wang et
    al. CVPR 2018; ArcFace, Deng et al. CVPR 2019: Table 3's "Intra" is the same idea, measured
    to the class centre)."""
    params = lesson.claim.params
    baseline = str(params["baseline"])
    margin_losses = [str(loss) for loss in params["margin_losses"]]
    low, high = float(params["min_gap_deg"]), float(params.get("max_gap_deg", math.inf))
    runs = [baseline, *margin_losses]
    comparison = train_lockstep(lesson, runs, progress, ", ".join(runs))
    labels = comparison.data.probe_labels
    theta = {}
    for name, run in comparison.runs.items():
        snap = final_snapshot(run)
        theta[name] = math.degrees(float(target_angles(snap.features, labels, snap.weights).mean()))
    gaps = {loss: theta[baseline] - theta[loss] for loss in margin_losses}
    measured = {f"mean θ_y {name} (°)": value for name, value in theta.items()}
    measured.update({f"{baseline} − {loss} (°)": gap for loss, gap in gaps.items()})
    passed = all(low <= gap <= high for gap in gaps.values())
    return ClaimResult(
        passed,
        measured,
        "Mean angle to the own class weight: "
        + ", ".join(f"{name} {value:.1f}°" for name, value in theta.items())
        + "; smaller than "
        + baseline
        + " by "
        + ", ".join(f"{gap:.1f}° ({loss})" for loss, gap in gaps.items())
        + f" (the claim: at least {low:g}°"
        + (f", at most {high:g}°)." if math.isfinite(high) else ")."),
    )
