"""Lesson 1: under plain softmax the raw feature norms grow."""

from __future__ import annotations

from marginlab.lessons.checks.common import (
    CHUNK,
    ClaimResult,
    Progress,
    final_snapshot,
    lesson_config,
    lesson_steps,
    mean_norm,
    part,
    quiet,
    train,
)
from marginlab.lessons.parser import Lesson
from marginlab.training.run import Run


def feature_norm_grows(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """Softmax rewards long features (Wen et al., ECCV 2016, Fig. 2; NormFace §3): the probe's
    mean raw ‖x‖ "keeps growing" — it is larger at every CHUNK-step snapshot from `early_step`
    on than at the one before — and at the end it is at least `ratio` times its value at
    `early_step`."""
    progress = progress or quiet
    early, ratio = int(lesson.claim.params["early_step"]), float(lesson.claim.params["ratio"])
    steps = lesson_steps(lesson)
    run = Run(lesson_config(lesson))
    train(run, early, part(progress, 0.0, early / steps), "softmax")
    norms = {early: mean_norm(final_snapshot(run).features)}
    while run.steps < steps:
        start = run.steps
        chunk = min(CHUNK, steps - start)
        train(run, chunk, part(progress, start / steps, (start + chunk) / steps), "softmax")
        norms[run.steps] = mean_norm(final_snapshot(run).features)
    end = final_snapshot(run)
    steps_seen, values = list(norms), list(norms.values())
    shrank = [steps_seen[k] for k in range(1, len(values)) if values[k] <= values[k - 1]]
    growth = norms[steps] / norms[early]
    measured = {f"mean ‖x‖ at step {step}": value for step, value in norms.items()}
    measured.update({"ratio": growth, "test accuracy": end.test_acc})
    passed = growth >= ratio and not shrank
    return ClaimResult(
        passed,
        measured,
        f"The mean feature length of the probe digits grew {growth:.2f}× between step {early} "
        f"and step {steps} (the claim asks for at least {ratio:g}×), "
        + (
            f"and it grew in every {CHUNK}-step interval."
            if not shrank
            else f"but it did not grow in the interval ending at step {shrank[0]}."
        ),
    )
