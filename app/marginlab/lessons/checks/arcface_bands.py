"""Lesson 3: ArcFace's margin bands on the circle are m wide."""

from __future__ import annotations

import math

import numpy as np

from marginlab.geometry.leads import lead_summary
from marginlab.geometry.regions import BAND, circle_directions, circle_runs, region_labels
from marginlab.lessons.checks.common import (
    ClaimResult,
    Progress,
    final_snapshot,
    lesson_config,
    lesson_steps,
    quiet,
    train,
)
from marginlab.lessons.parser import Lesson
from marginlab.training.run import Run

CIRCLE_SAMPLES = 36_000  # 0.01° per sample: a band's width is measured to ±1.7e-4 rad


def band_widths(
    weights: np.ndarray, *, s: float, m2: float, policy: str
) -> tuple[list[float], int, int]:
    """Widths of the ArcFace margin bands on the circle that separate the coloured sectors of
    two neighbouring classes (weights next to each other on the circle), plus how many bands
    there are and how many were skipped: those bordering no sector, or the sectors of two
    classes that are not neighbours (a class between them lost its sector)."""
    labels = region_labels(
        circle_directions(CIRCLE_SAMPLES), weights, loss="arcface", s=s, m2=m2, policy=policy
    )
    runs = circle_runs(labels)
    order = np.argsort(np.mod(np.arctan2(weights[:, 1], weights[:, 0]), 2 * math.pi))
    neighbours = {(int(a), int(b)) for a, b in zip(order, np.roll(order, -1), strict=True)}
    widths: list[float] = []
    bands = skipped = 0
    for index, run in enumerate(runs):
        if run.label != BAND:
            continue
        bands += 1
        before, after = runs[index - 1].label, runs[(index + 1) % len(runs)].label
        # Two sectors can only face each other across a band when their weights are more
        # than m apart (closer weights lose their sectors towards each other), so no gap
        # condition is needed here.
        if (before, after) not in neighbours:
            skipped += 1
            continue
        widths.append(run.end - run.start)
    return widths, bands, skipped


def band_width_equals_margin(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """ArcFace's boundary of class a against b is θ_a + m = θ_b (Deng et al., CVPR 2019, §2.1
    and Fig. 5), so the band separating the sectors of two neighbouring classes on the circle
    is m wide. Measured on a 0.01° circle with the trained weights via geometry.region_labels."""
    progress = progress or quiet
    tolerance = float(lesson.claim.params["tolerance"])
    min_bands = int(lesson.claim.params.get("min_bands", 2))
    config = lesson_config(lesson)
    run = Run(config)
    train(run, lesson_steps(lesson), progress, "ArcFace")
    snap = final_snapshot(run)
    weights = snap.weights
    widths, bands, skipped = band_widths(weights, s=config.s, m2=config.m2, policy=config.policy)
    # Not part of the claim: the leads the lesson's "Try this" quotes (geometry.leads).
    leads = lead_summary(
        snap.features, run.data.probe_labels, weights, loss="arcface", requested_margin=config.m2
    )
    errors = [abs(width - config.m2) for width in widths]
    measured = {
        "m (rad)": config.m2,
        "bands": float(bands),
        "bands measured": float(len(widths)),
        "narrowest band (rad)": min(widths, default=float("nan")),
        "widest band (rad)": max(widths, default=float("nan")),
        "largest error (rad)": max(errors, default=float("nan")),
        "median lead of the test digits (°)": math.degrees(leads.median),
        "test digits with lead ≥ m": leads.met_fraction,
    }
    # Some bands must qualify, or the claim would hold vacuously.
    passed = len(widths) >= min_bands and max(errors) <= tolerance
    return ClaimResult(
        passed,
        measured,
        f"{len(widths)} of {bands} grey bands separate the coloured sectors of two "
        f"neighbouring classes; their widths range from "
        f"{measured['narrowest band (rad)']:.4f} to {measured['widest band (rad)']:.4f} rad "
        f"(m = {config.m2:g}, tolerance ±{tolerance:g}). {skipped} band(s) skipped: they "
        "border a class that lost its sector.",
    )
