"""What every lesson check shares: the result type, the lesson's own run, chunked training with
progress, and the final snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from marginlab.lab_state import run_config
from marginlab.lessons.parser import Lesson
from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import RunConfig
from marginlab.training.run import Progress, Run
from marginlab.training.snapshots import Snapshot

CHUNK = 25  # steps between progress reports; also the loss window of lesson 2
# The checks take the snapshots they need themselves. A snapshot only reads the model (eval
# mode, no gradient), so leaving out the scheduled ones changes no weight and saves ~10 %.
NO_SCHEDULED_SNAPSHOTS = 1_000_000


@dataclass(frozen=True)
class ClaimResult:
    """What a check measured. `skipped` names why it could not run (then `passed` is False)."""

    passed: bool
    measured: dict[str, float] = field(default_factory=dict)
    explanation: str = ""
    skipped: str = ""


class Check(Protocol):
    def __call__(self, lesson: Lesson, progress: Progress | None = None) -> ClaimResult: ...


def quiet(fraction: float, message: str) -> None:
    """The default progress callback: nobody is watching."""


def train(trainer: Run | LockstepComparison, steps: int, progress: Progress, what: str) -> None:
    """`steps` optimisation steps in chunks, reporting the fraction done after each chunk."""
    done = 0
    while done < steps:
        chunk = min(CHUNK, steps - done)
        trainer.step(chunk)
        done += chunk
        progress(done / steps, f"{what}: step {done} of {steps}")


def part(progress: Progress, start: float, end: float) -> Progress:
    """A progress callback for the share [start, end] of the whole check."""
    return lambda fraction, message: progress(start + fraction * (end - start), message)


def final_snapshot(run: Run) -> Snapshot:
    """A snapshot at the run's current step (the scheduled one if there is one)."""
    latest = run.history[-1] if run.history else None
    return latest if latest is not None and latest.step == run.steps else run.snapshot()


def lesson_config(lesson: Lesson, loss: str | None = None, **changes: Any) -> RunConfig:
    """The run the lab would train for this lesson (and loss), with `changes`."""
    config = run_config(lesson.preset, loss)
    return config.with_changes(snapshot_every=NO_SCHEDULED_SNAPSHOTS, **changes)


def train_lockstep(
    lesson: Lesson, runs: Sequence[str | RunConfig], progress: Progress | None, what: str
) -> LockstepComparison:
    """The opening of every lock-step check: the lesson's runs (loss names of its preset, or
    configs) trained in lock-step for the lesson's steps, reporting to `progress` if given."""
    configs = [lesson_config(lesson, run) if isinstance(run, str) else run for run in runs]
    comparison = LockstepComparison(configs)
    train(comparison, lesson_steps(lesson), progress or quiet, what)
    return comparison


def mean_norm(features: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(features, dtype=np.float64), axis=1).mean())


def lesson_steps(lesson: Lesson) -> int:
    if lesson.pretrain_steps < 1:
        raise ValueError(f"lesson {lesson.id} trains for 0 steps: its claim needs pretrain_steps")
    return lesson.pretrain_steps
