"""The server's side of one trainer: a mirror of its state that a page reads without waiting.

The worker pushes updates (steps, playing, error, new snapshots); a reader thread of the
service applies them here. A page reads `steps`, `playing`, `runs[i].history` at any time and
never waits on a training step; only `pause`, `step` and `save` wait for the worker's answer,
which comes between two steps (one step at most).

Hyper-parameter changes apply at once here (validated by RunConfig, so a bad value fails on
the page with the engine's own message) and from the worker's next step; an update that was on
its way before the change cannot undo it (`params_version`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from marginlab.training.config import RunConfig
from marginlab.training.run import MUTABLE_FIELDS
from marginlab.training.service.messages import Created, RunInfo, Update
from marginlab.training.service.pipe_worker import WorkerCrashed
from marginlab.training.snapshots import Snapshot

# How a handle reaches its worker: (command name, payload, wait) -> the reply's value.
Send = Callable[[str, Any, bool], Any]


def param_changes(current: RunConfig, wanted: RunConfig) -> dict[str, Any]:
    """The hyper-parameters a running trainer would change to go from `current` to `wanted`."""
    return {
        name: getattr(wanted, name)
        for name in MUTABLE_FIELDS
        if getattr(current, name) != getattr(wanted, name)
    }


class RunView:
    """One run as a page sees it: its fixed facts and the mirrored snapshot history."""

    def __init__(self, info: RunInfo, lock: threading.Lock) -> None:
        self.name = info.name
        self.config = info.config
        self.init_hash = info.init_hash
        self.probe_labels: np.ndarray = info.probe_labels
        self.class_names = info.class_names
        self.num_classes = info.num_classes
        self.probe_description = info.probe_description
        self.device = torch.device(info.device)  # as Run.device (the worker's tensors)
        self.source = info.source
        self.notice = info.notice
        self.steps = 0
        self.elapsed = 0.0
        self.skipped_steps = 0
        self._lock = lock
        self._history: deque[Snapshot] = deque()

    @property
    def history(self) -> tuple[Snapshot, ...]:
        """The snapshots the page can replay, oldest first (a copy: the reader thread adds)."""
        with self._lock:
            return tuple(self._history)

    def latest_snapshot(self) -> Snapshot:
        with self._lock:
            return self._history[-1]

    @property
    def nan_seen(self) -> bool:
        return self.skipped_steps > 0

    def frozen(self) -> RunView:
        """A copy that stops here (its history no longer grows): what a session paused on a
        shared run shows while the shared trainer goes on for the others (sharing.py)."""
        with self._lock:
            copy = object.__new__(RunView)
            copy.__dict__.update(self.__dict__)
            copy._lock = threading.Lock()
            copy._history = deque(self._history, maxlen=self._history.maxlen)
        return copy

    def _add(self, snapshots: Sequence[Snapshot], limit: int) -> None:
        if self._history.maxlen != limit:
            self._history = deque(self._history, maxlen=max(1, limit))
        self._history.extend(snapshots)


PACE_TOLERANCE = 0.25


class TrainerHandle:
    """One session's trainer (a run or a lock-step comparison) in a worker of the service."""

    def __init__(self, trainer_id: str, created: Created, send: Send) -> None:
        self.id = trainer_id
        self.kind = created.kind
        self.worker_pid = created.worker_pid
        self._send = send
        self._lock = threading.Lock()
        self.runs = [RunView(info, self._lock) for info in created.runs]
        self.playing = False
        self.until: int | None = None
        self.error = ""
        self.crashed = ""  # why the trainer is gone (its worker died); Reset starts anew
        self.closed = False
        self.cpu_seconds = 0.0
        self.version = 0  # counts updates: a page can tell whether anything changed
        self.last_touch = time.monotonic()
        self._params_version = 0
        self._pace = 0.0  # the redraw interval last sent to the worker
        self.apply_update(created.update)

    @property
    def steps(self) -> int:
        return self.runs[0].steps

    @property
    def alive(self) -> bool:
        return not (self.closed or self.crashed)

    def touch(self) -> None:
        """The page still looks at this trainer (the service ends trainers nobody polls)."""
        self.last_touch = time.monotonic()

    # ----- commands -----------------------------------------------------------------------
    def play(self, until: int | None = None) -> None:
        """Train at the machine's speed (until step `until`, if given); returns at once."""
        if not self.alive or (until is not None and until <= self.steps):
            return
        self.playing, self.until, self.error = True, until, ""
        self._send("play", until, False)

    def pause(self) -> int:
        """Stop training; returns the final step count: no step is taken after it. (If the
        worker died meanwhile, the trainer is marked crashed and nothing trains either.)"""
        if self.alive:
            with contextlib.suppress(WorkerCrashed):
                self.apply_update(self._send("pause", None, True))
        return self.steps

    def pace(self, seconds: float) -> None:
        """The page redraws about every `seconds`: the worker takes live snapshots no more
        often (sent when it changed by more than a quarter; returns at once)."""
        last = self._pace
        if not self.alive or (last and abs(seconds - last) <= PACE_TOLERANCE * last):
            return
        self._pace = seconds
        self._send("pace", float(seconds), False)

    def step(self, count: int) -> int:
        """Train `count` steps now (pausing a playing trainer); returns the step count."""
        if self.alive:
            self.error = ""
            with contextlib.suppress(WorkerCrashed):
                self.apply_update(self._send("step", int(count), True))
        return self.steps

    def set_params(self, configs: Sequence[RunConfig]) -> bool:
        """Bring the running hyper-parameters in line with `configs` (one per run) from the
        next step; ValueError (the engine's message) for a value a run refuses. Returns
        whether anything changed."""
        changes, new_configs = [], []
        for view, wanted in zip(self.runs, configs, strict=True):
            change = param_changes(view.config, wanted)
            changes.append(change)
            new_configs.append(view.config.with_changes(**change))  # validates
        if not any(changes) or not self.alive:
            return False
        with self._lock:
            self._params_version += 1
            version = self._params_version
            for view, config in zip(self.runs, new_configs, strict=True):
                view.config = config
        self._send("set_params", (version, changes), False)
        return True

    def save(self) -> bytes:
        """The trainer as a run file (see training.run_files)."""
        if not self.alive:
            raise RuntimeError(self.crashed or "this trainer was closed")
        return self._send("save", None, True)

    def query(self, index: int, look: Callable[[Any], Any]) -> Any:
        """`look(run)` on the worker's own run number `index`, between two steps (a picklable
        function: e.g. statistics that need the model, not only a snapshot)."""
        if not self.alive:
            raise RuntimeError(self.crashed or "this trainer was closed")
        return self._send("query", (int(index), look), True)

    def close(self) -> None:
        """End the trainer (its worker forgets it); idempotent."""
        if self.closed:
            return
        self.closed, self.playing = True, False
        if not self.crashed:
            self._send("close", None, False)

    # ----- called by the service's reader thread ---------------------------------------------
    def apply_update(self, update: Update) -> None:
        with self._lock:
            for view, run in zip(self.runs, update.runs, strict=True):
                view.steps, view.elapsed = run.steps, run.elapsed
                view.skipped_steps = run.skipped_steps
                if update.params_version >= self._params_version:
                    view.config = run.config  # the worker has every change the page made
                view._add(run.snapshots, run.history_limit)
            self.playing, self.until = update.playing, update.until
            if update.error:
                self.error = update.error
            self.cpu_seconds = update.cpu_seconds
            self.version += 1

    def mark_crashed(self, reason: str) -> None:
        with self._lock:
            self.crashed = reason
            self.playing = False
            self.version += 1
