"""Trainers with a planted fault, for tests/test_service.py.

They live in an importable module (not in the test file) because the service builds trainers
inside its worker processes, which import a builder by name. The faults are real: a loss that
really is NaN at one step (the engine's guard must skip it), a step that really raises.
Also what the service's tests share: waiting for a condition, a run's weights, a saved handle.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from marginlab.training.backbones import state_hash
from marginlab.training.config import default_config
from marginlab.training.run import Run
from marginlab.training.run_files import load_comparison, load_run

CONFIG = {"device": "cpu", "probe_size": 200, "snapshot_every": 10}


def nan_at_step(step: int) -> Run:
    """An ArcFace run whose loss is NaN at (0-based) `step` only."""
    run = Run(default_config("arcface", 2, **CONFIG))
    compute_loss = run.head.compute_loss

    def poisoned(features, labels):
        loss = compute_loss(features, labels)
        return loss * math.nan if run.steps == step else loss

    run.head.compute_loss = poisoned  # type: ignore[method-assign]
    return run


class RaisingRun(Run):
    """A run whose training step raises at one step (a bug in a trainer, as the page sees it)."""

    raise_at = 5

    def _train_on(self, indices):
        if self.steps == self.raise_at:
            raise RuntimeError("planted failure")
        super()._train_on(indices)


def raising_at_step(step: int) -> Run:
    run = RaisingRun(default_config("cosface", 2, **CONFIG))
    run.raise_at = step
    return run


def wait_for(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def weights(run) -> str:
    return state_hash(run.backbone) + state_hash(run.head)


def saved(handle, tmp_path: Path, *, comparison: bool = False):
    """The handle's trainer as its worker has it (through a run file)."""
    path = tmp_path / f"{handle.id}.pt"
    path.write_bytes(handle.save())
    return load_comparison(path) if comparison else load_run(path)
