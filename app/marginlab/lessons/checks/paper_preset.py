"""Lesson 5: on a circle the paper's preset s = 64, m = 0.5 asks for more margin than ten
classes have room for — what the phase map calls "margin too large"."""

from __future__ import annotations

from marginlab.experiments.phase_rule import measure_run
from marginlab.lessons.checks.common import (
    ClaimResult,
    Progress,
    lesson_config,
    train_lockstep,
)
from marginlab.lessons.parser import Lesson


def paper_preset_struggles_in_2d(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """The paper's ArcFace s = 64, m = 0.5 against a 2-D preset, in lock-step, measured as the
    phase map measures a cell (phase_rule.measure_run, whole test set): "meets the margin" is
    the loss's own test, the head's margin logits putting the digit's class first (for ArcFace:
    a lead of at least m over the nearest rival weight). "Without a NaN" is what the engine's
    guard reports: a step whose loss or gradient is not finite is skipped and counted, so a run
    with zero skipped steps never produced a NaN."""
    gentle = {
        "s": float(lesson.claim.params["gentle_s"]),
        "m2": float(lesson.claim.params["gentle_m2"]),
    }
    share = float(lesson.claim.params["met_fraction"])
    paper = lesson_config(lesson)
    runs = [paper, paper.with_changes(**gentle)]
    comparison = train_lockstep(lesson, runs, progress, "ArcFace, paper and 2-D presets")
    paper_run, gentle_run = comparison.runs.values()
    paper_cell, gentle_cell = measure_run(paper_run), measure_run(gentle_run)
    measured = {
        f"margin met, s = {paper.s:g}, m = {paper.m2:g}": paper_cell["margin_met"],
        f"margin met, s = {gentle['s']:g}, m = {gentle['m2']:g}": gentle_cell["margin_met"],
        f"test accuracy s = {paper.s:g}, m = {paper.m2:g}": paper_cell["accuracy"],
        f"test accuracy s = {gentle['s']:g}, m = {gentle['m2']:g}": gentle_cell["accuracy"],
        "skipped steps (paper preset)": paper_cell["skipped_steps"],
        "skipped steps (2-D preset)": gentle_cell["skipped_steps"],
    }
    no_nan = not paper_run.nan_seen and not gentle_run.nan_seen
    passed = no_nan and paper_cell["margin_met"] < share and gentle_cell["margin_met"] > share
    return ClaimResult(
        passed,
        measured,
        f"Held-out digits that meet the margin: {100 * paper_cell['margin_met']:.1f} % with the "
        f"paper preset, {100 * gentle_cell['margin_met']:.1f} % with s = {gentle['s']:g}, m = "
        f"{gentle['m2']:g} (the claim: below and above {100 * share:g} %); test accuracy "
        f"{100 * paper_cell['accuracy']:.1f} % and {100 * gentle_cell['accuracy']:.1f} %; steps "
        f"skipped for a non-finite loss or gradient: {paper_run.skipped_steps} and "
        f"{gentle_run.skipped_steps}.",
    )
