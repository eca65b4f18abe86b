"""Picklable recipes for trainers, built inside a worker (a model never crosses the pipe).

`TrainingService.create` takes any zero-argument callable that pickles; these are the ones the
app needs besides `functools.partial(Run, config)` and `functools.partial(LockstepComparison,
configs)`.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import RunConfig
from marginlab.training.run import Run

Trainer = Run | LockstepComparison


def new_run(config: RunConfig) -> Callable[[], Run]:
    return functools.partial(Run, config)


def new_comparison(configs: Sequence[RunConfig]) -> Callable[[], LockstepComparison]:
    return functools.partial(LockstepComparison, tuple(configs))


def from_run_file(
    data: bytes, *, comparison: bool, max_bytes: int | None = None
) -> Callable[[], Run | LockstepComparison]:
    """A trainer restored from run-file bytes (RunFileError for a bad file, raised by create);
    `max_bytes` bounds what the file may inflate to (run_files' checks)."""
    return functools.partial(_load, data, comparison, max_bytes)


def forked(build: Callable[[], Trainer], data: bytes) -> Callable[[], Trainer]:
    """`build()` with the state of run-file bytes `data` put into it: a fork of a shared run
    (training.service.sharing) that goes on exactly as the shared trainer would have. Built by
    its own recipe, so what a run file does not hold (the data subset, an augmentation hook)
    is the shared trainer's too."""
    return functools.partial(_fork, build, data)


def _load(data: bytes, comparison: bool, max_bytes: int | None = None) -> Trainer:
    from marginlab.training.run_files import load_comparison, load_run

    load = load_comparison if comparison else load_run
    limit = {} if max_bytes is None else {"max_bytes": max_bytes}
    return _with_file(data, lambda path: load(path, **limit))


def _fork(build: Callable[[], Trainer], data: bytes) -> Trainer:
    from marginlab.training.run_files import restore

    trainer = build()
    _with_file(data, lambda path: restore(trainer, path))
    return trainer


def _with_file(data: bytes, use: Callable[[Path], Any]) -> Any:
    with tempfile.TemporaryDirectory(prefix="marginlab-load-") as folder:
        path = Path(folder) / "upload.pt"
        path.write_bytes(data)
        return use(path)
