"""What travels between the app's server process and the training workers.

Plain picklable data only (dataclasses of numbers, strings, numpy arrays and Snapshots), never a
torch tensor: multiprocessing would move a tensor through a shared-memory segment, and a
segment is one more thing that could outlive a killed server. Run files travel as bytes.

Server → worker: ``Command(request, name, trainer, payload)``; a command with a request id is
answered by one ``Reply``. Worker → server: ``Reply`` and, unasked, ``Update`` (a trainer's
progress, at most a few per second).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from marginlab.training.config import RunConfig
from marginlab.training.snapshots import Snapshot

# The commands a worker understands (worker.py dispatches on these names).
COMMANDS = (
    "create",
    "play",
    "pause",
    "step",
    "set_params",
    "save",
    "query",
    "close",
    "ping",
    "exit",
)


@dataclass(frozen=True)
class Command:
    request: int | None  # None: nobody waits for the reply
    name: str
    trainer: str
    payload: Any = None


@dataclass(frozen=True)
class Reply:
    request: int
    ok: bool
    value: Any = None  # the result, or the exception (or its text, if it does not pickle)


@dataclass(frozen=True)
class RunInfo:
    """What does not change while a run trains: enough to draw it without the model."""

    name: str
    config: RunConfig
    init_hash: str
    probe_labels: np.ndarray
    class_names: tuple[str, ...]
    num_classes: int
    probe_description: str
    device: str
    source: str
    notice: str


@dataclass(frozen=True)
class RunUpdate:
    steps: int
    elapsed: float
    skipped_steps: int
    config: RunConfig
    snapshots: tuple[Snapshot, ...]  # new since the previous update, oldest first
    history_limit: int  # how many snapshots the run keeps (its history's maxlen)


@dataclass(frozen=True)
class Update:
    """A trainer's state after some steps, with the snapshots the server has not seen yet."""

    trainer: str
    steps: int
    playing: bool
    error: str
    cpu_seconds: float
    runs: tuple[RunUpdate, ...]
    until: int | None = None
    params_version: int = 0  # the last set_params the worker applied


@dataclass(frozen=True)
class Created:
    """The reply to "create": the static facts and the first update."""

    kind: str  # "run" or "comparison"
    runs: tuple[RunInfo, ...]
    update: Update
    worker_pid: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def is_build_setting(name: str) -> bool:
    """An environment variable a trainer's build reads, passed from the server to the worker
    with each build: the app's own (MARGINLAB_CACHE, ...) and where scikit-learn keeps the
    face sets (SCIKIT_LEARN_DATA)."""
    return name.startswith("MARGINLAB_") or name == "SCIKIT_LEARN_DATA"
