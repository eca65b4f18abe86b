"""Live training in a Streamlit session: the session's trainer, Play/Pause/Step/Reset, the tick.

A trainer (one Run, or a LockstepComparison) lives in st.session_state, so it outlives reruns
and dies with the session. Nothing here starts a thread: the browser drives the training
through a fragment that reruns every TICK_SECONDS while playing (../shared/reference/
STREAMLIT.md: the only loop that kept sliders responsive), so closing the tab stops it.

Streamlit may start a new script run while the previous one is still inside a training chunk
(runner.fastReruns); two threads training one model at once corrupt autograd. Each trainer
therefore has a lock that the tick takes without waiting: a busy tick simply skips training.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from marginlab.data.datasets import DatasetUnavailable
from marginlab.lab_state import tunable_params
from marginlab.params import STRUCTURAL
from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import RunConfig
from marginlab.training.run import Run
from ui.state import update_config

TICK_SECONDS = 0.35  # time between live updates while playing
STEP_BUDGET_SECONDS = 0.12  # training CPU time per tick: keeps each tick under ~150 ms of compute

Trainer = Run | LockstepComparison


@dataclass
class LiveTraining:
    """One session's trainer and its transport state (playing, last error)."""

    identity: tuple
    trainer: Trainer
    playing: bool = False
    error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def runs(self) -> list[Run]:
        return _runs(self.trainer)

    @property
    def steps(self) -> int:
        return self.runs[0].steps

    def advance(self, max_steps: int, budget: float = STEP_BUDGET_SECONDS) -> bool:
        """Train up to `max_steps` within `budget` CPU seconds and snapshot; False if busy."""
        if not self.lock.acquire(blocking=False):
            return False
        try:
            _train_chunk(self.trainer, max_steps, budget)
            for run in self.runs:
                run.snapshot()
        except Exception as error:  # shown in the page, never as a red traceback
            self.playing = False
            self.error = f"Training stopped at step {self.steps}: {error}"
        finally:
            self.lock.release()
        return True

    def apply(self, configs: list[RunConfig]) -> None:
        """Bring the running hyper-parameters in line with `configs` (next step on)."""
        with self.lock:
            for run, wanted in zip(self.runs, configs, strict=True):
                changes = _mutable_changes(run.config, wanted)
                if changes:
                    run.set_params(**changes)


def _train_chunk(trainer: Trainer, max_steps: int, budget: float) -> int:
    """Up to `max_steps` steps (at least one) while this thread's CPU time stays in `budget`.

    CPU time, not the wall clock (Trainer.step_for): while other sessions' ticks hold the GIL
    a step takes several times longer on the clock, so a wall budget shrank every tick to one
    step and the tick's fixed cost (snapshot, figures) ate the server: with four sessions
    playing, 4x fewer steps in all. A step's CPU time does not grow with the crowd.
    """
    start = time.thread_time()
    taken = 0
    while taken < max_steps:
        before = time.thread_time()
        trainer.step(1)
        taken += 1
        now = time.thread_time()
        if now - start + (now - before) > budget:  # the next step would overrun it
            break
    return taken


def _identity(configs: list[RunConfig]) -> tuple:
    return tuple(tuple(getattr(c, name) for name in STRUCTURAL) for c in configs)


def _mutable_changes(current: RunConfig, wanted: RunConfig) -> dict[str, Any]:
    from marginlab.training.run import MUTABLE_FIELDS

    return {
        name: getattr(wanted, name)
        for name in MUTABLE_FIELDS
        if getattr(current, name) != getattr(wanted, name)
    }


def live_training(
    slot: str,
    configs: list[RunConfig],
    build: Callable[[list[RunConfig]], Trainer],
    *,
    setup: tuple = (),
) -> LiveTraining | None:
    """The session's trainer in `slot` for `configs`: a new one when the setup changed
    (dataset, loss, dimension, seed, or anything in `setup`, e.g. which people), otherwise
    the old one with the new hyper-parameters.

    Returns None (with a message on the page) when the data set cannot be had.
    """
    identity = (_identity(configs), setup)
    live: LiveTraining | None = st.session_state.get(slot)
    if live is None or live.identity != identity:
        try:
            with st.spinner("Preparing the data and the model…"):
                live = LiveTraining(identity, build(configs))
        except DatasetUnavailable as error:
            st.warning(str(error), icon=":material/cloud_off:")
            return None
        st.session_state[slot] = live
    else:
        live.apply(configs)
    return live


def reset(slot: str) -> None:
    st.session_state.pop(slot, None)


def transport(live: LiveTraining, slot: str, *, speed: int) -> None:
    """Play / Pause, Step, Reset buttons."""
    play, step, reset_col = st.columns(3)
    if live.playing:
        if play.button("Pause", icon=":material/pause:", width="stretch"):
            live.playing = False
            st.rerun()
    elif play.button("Play", icon=":material/play_arrow:", type="primary", width="stretch"):
        live.playing = True
        live.error = ""
        st.rerun()
    if step.button("Step", icon=":material/skip_next:", width="stretch"):
        live.playing = False
        live.error = ""
        live.advance(max_steps=speed, budget=10.0)
    if reset_col.button("Reset", icon=":material/restart_alt:", width="stretch"):
        reset(slot)
        st.rerun()
    st.caption(f"Device: {live.runs[0].device.type} · data: {live.runs[0].data.dataset.source}")


def run_every(live: LiveTraining) -> float | None:
    """The fragment's rerun interval: ticking while playing, still while paused."""
    return TICK_SECONDS if live.playing else None


def adopt(slot: str, trainer: Trainer) -> None:
    """Make a loaded trainer the session's, and the lab's settings match it (and the URL)."""
    live = LiveTraining((_identity([run.config for run in _runs(trainer)]), ()), trainer)
    st.session_state[slot] = live
    configs = [run.config for run in live.runs]
    first = configs[0]
    changes: dict[str, Any] = {
        "dataset": first.dataset,
        "device": first.device,  # part of the trainer's identity: a mismatch would rebuild it
        "dim": first.dim,
        "seed": first.seed,
        "policy": first.policy,
        "lr": first.lr,
    }
    if isinstance(trainer, LockstepComparison):
        changes["losses"] = tuple(config.loss for config in configs)
    else:
        changes["loss"] = first.loss
    for config in configs:
        for name in tunable_params(config.loss):
            changes.setdefault(name, getattr(config, name))
    update_config(**changes)


def _runs(trainer: Trainer) -> list[Run]:
    return list(trainer) if isinstance(trainer, LockstepComparison) else [trainer]
