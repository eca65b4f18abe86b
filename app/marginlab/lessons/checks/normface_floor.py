"""Lesson 2: a small scale s puts a floor under the NormFace loss."""

from __future__ import annotations

import math

from marginlab.lessons.checks.common import (
    CHUNK,
    ClaimResult,
    Progress,
    lesson_config,
    lesson_steps,
    quiet,
    train,
)
from marginlab.lessons.parser import Lesson
from marginlab.training.run import Run


def normface_loss_floor(s: float, n_classes: int = 10) -> float:
    """The smallest NormFace loss of one sample when C class weights are spread evenly on a
    circle and the feature sits exactly on its own weight (Wang et al., NormFace, ACM MM 2017,
    §3.3 derives the general bound):  log(1 + Σ_{k=1}^{C−1} exp(s·(cos(2πk/C) − 1))).

    Evenly spaced weights are the best case in 2-D, so no 2-D NormFace model gets below it.
    """
    if n_classes < 2:
        raise ValueError(f"the floor needs at least two classes, got {n_classes}")
    others = sum(
        math.exp(s * (math.cos(2 * math.pi * k / n_classes) - 1.0)) for k in range(1, n_classes)
    )
    return math.log1p(others)


def scale_sets_loss_floor(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """NormFace at s = low_s: the loss stays above the floor while the model already classifies
    well (test accuracy ≥ min_acc). Two losses are compared with the floor: the engine's
    training loss, i.e. the mean cross-entropy over the last CHUNK batches (NormFace has no
    margin, so it is exactly the loss being minimised), and the mean loss over the whole test
    set at the final weights. The floor holds for the MEAN over balanced classes, not for one
    sample, so these means are what the claim is about."""
    progress = progress or quiet
    low_s = float(lesson.claim.params["low_s"])
    min_acc = float(lesson.claim.params["min_acc"])
    steps = lesson_steps(lesson)
    run = Run(lesson_config(lesson, s=low_s))
    train(run, steps - CHUNK, lambda f, m: progress(f * (steps - CHUNK) / steps, m), "NormFace")
    run.snapshot()  # starts the loss window of the last CHUNK batches
    train(run, CHUNK, lambda f, m: progress((steps - CHUNK + f * CHUNK) / steps, m), "NormFace")
    n_classes = run.data.num_classes
    floor = normface_loss_floor(low_s, n_classes)
    train_loss = run.snapshot().loss
    test = run.evaluate()
    measured = {
        f"floor at s = {low_s:g}": floor,
        f"training loss, last {CHUNK} batches": train_loss,
        "test loss": test["test_loss"],
        "test accuracy": test["test_acc"],
        "floor at s = 16 (for comparison)": normface_loss_floor(16.0, n_classes),
    }
    passed = train_loss >= floor and test["test_loss"] >= floor and test["test_acc"] >= min_acc
    return ClaimResult(
        passed,
        measured,
        f"At s = {low_s:g} after {steps} steps: training loss {train_loss:.3f} (mean over the "
        f"last {CHUNK} batches) and test loss {test['test_loss']:.3f}, against the floor "
        f"{floor:.3f}, with {100 * test['test_acc']:.1f} % of the test digits right (the claim "
        f"asks for at least {100 * min_acc:g} %).",
    )
