"""Lesson 1: under plain softmax the raw feature norms grow."""

from __future__ import annotations

from marginlab.lessons.checks.common import (
    ClaimResult,
    Progress,
    final_snapshot,
    lesson_config,
    lesson_steps,
    mean_norm,
    quiet,
    train,
)
from marginlab.lessons.parser import Lesson
from marginlab.training.run import Run


def feature_norm_grows(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """Softmax rewards long features (Wen et al., ECCV 2016, Fig. 2; NormFace §3): the probe's
    mean raw ‖x‖ at the end is at least `ratio` times its mean at step `early_step`."""
    progress = progress or quiet
    early, ratio = int(lesson.claim.params["early_step"]), float(lesson.claim.params["ratio"])
    steps = lesson_steps(lesson)
    run = Run(lesson_config(lesson))
    train(run, early, lambda f, m: progress(f * early / steps, m), "softmax")
    norm_early = mean_norm(final_snapshot(run).features)
    train(
        run,
        steps - early,
        lambda f, m: progress((early + f * (steps - early)) / steps, m),
        "softmax",
    )
    end = final_snapshot(run)
    norm_end = mean_norm(end.features)
    measured = {
        f"mean ‖x‖ at step {early}": norm_early,
        f"mean ‖x‖ at step {steps}": norm_end,
        "ratio": norm_end / norm_early,
        "test accuracy": end.test_acc,
    }
    passed = norm_end >= ratio * norm_early
    return ClaimResult(
        passed,
        measured,
        f"The mean feature length of the probe digits grew {norm_end / norm_early:.2f}× "
        f"between step {early} and step {steps} (the claim asks for at least {ratio:g}×).",
    )
