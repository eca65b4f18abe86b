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

from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import RunConfig
from marginlab.training.run import Run


def new_run(config: RunConfig) -> Callable[[], Run]:
    return functools.partial(Run, config)


def new_comparison(configs: Sequence[RunConfig]) -> Callable[[], LockstepComparison]:
    return functools.partial(LockstepComparison, tuple(configs))


def from_run_file(data: bytes, *, comparison: bool) -> Callable[[], Run | LockstepComparison]:
    """A trainer restored from run-file bytes (RunFileError for a bad file, raised by create)."""
    return functools.partial(_load, data, comparison)


def _load(data: bytes, comparison: bool) -> Run | LockstepComparison:
    from marginlab.training.run_files import load_comparison, load_run

    with tempfile.TemporaryDirectory(prefix="marginlab-load-") as folder:
        path = Path(folder) / "upload.pt"
        path.write_bytes(data)
        return load_comparison(path) if comparison else load_run(path)
