"""Lesson 5: the paper's preset s = 64, m = 0.5 struggles on a circle."""

from __future__ import annotations

from marginlab.lessons.checks.common import (
    ClaimResult,
    Progress,
    lesson_config,
    lesson_steps,
    quiet,
    train,
)
from marginlab.lessons.parser import Lesson
from marginlab.training.comparison import LockstepComparison


def paper_preset_struggles_in_2d(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """The paper's ArcFace s = 64, m = 0.5 against a 2-D preset, in lock-step. "Without a NaN"
    is what the engine's guard reports: a step whose loss or gradient is not finite is skipped
    and counted (Run.skipped_steps), so a run with zero skipped steps never produced a NaN."""
    progress = progress or quiet
    gentle = {
        "s": float(lesson.claim.params["gentle_s"]),
        "m2": float(lesson.claim.params["gentle_m2"]),
    }
    paper = lesson_config(lesson)
    comparison = LockstepComparison([paper, paper.with_changes(**gentle)])
    train(comparison, lesson_steps(lesson), progress, "ArcFace, paper and 2-D presets")
    paper_run, gentle_run = comparison.runs.values()
    paper_acc, gentle_acc = paper_run.evaluate()["test_acc"], gentle_run.evaluate()["test_acc"]
    measured = {
        f"test accuracy s = {paper.s:g}, m = {paper.m2:g}": paper_acc,
        f"test accuracy s = {gentle['s']:g}, m = {gentle['m2']:g}": gentle_acc,
        "skipped steps (paper preset)": float(paper_run.skipped_steps),
        "skipped steps (2-D preset)": float(gentle_run.skipped_steps),
    }
    no_nan = not paper_run.nan_seen and not gentle_run.nan_seen
    passed = no_nan and paper_acc < gentle_acc
    return ClaimResult(
        passed,
        measured,
        f"Test accuracy {100 * paper_acc:.1f} % (paper preset) vs {100 * gentle_acc:.1f} % "
        f"(s = {gentle['s']:g}, m = {gentle['m2']:g}); steps skipped for a non-finite loss or "
        f"gradient: {paper_run.skipped_steps} and {gentle_run.skipped_steps}.",
    )
