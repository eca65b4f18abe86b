"""Live training in a Streamlit session: the session's trainer handle and the transport.

The trainer itself (a Run or a LockstepComparison) lives in a worker process of the training
service (marginlab.training.service); the session keeps a `LiveTraining`: the handle and the
identity of what it trains. Nothing here trains or waits for a training step, except Pause
(the worker answers between two steps, with the final step count), Step and fast-forward.

A trainer ends with its session: Reset and a new setup close it; a closed tab stops polling,
and the service ends a trainer nobody polled for two minutes (`keepalive` polls while paused).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from marginlab.data.datasets import DatasetUnavailable
from marginlab.lab_state import tunable_params
from marginlab.params import STRUCTURAL
from marginlab.training.config import RunConfig
from marginlab.training.service import RunView, TrainerHandle
from marginlab.training.service.session import SessionHandle
from ui.service import training_service
from ui.state import update_config

TICK_SECONDS = 0.35  # shortest time between redraws while playing (the worker trains in between)
# A redraw may take at most this share of the time between two: the rest is left to the
# browser drawing it, to clicks and slider moves, and to training. (On the busy 2-core machine
# the Lab's figures took about a second to build: a fixed 0.35 s tick then kept the script
# thread and chromium busy without a break, and a slider move took 30 s to reach the URL.)
DRAW_SHARE = 0.3
_DRAW_SECONDS = "live_draw_seconds"  # session_state: a running mean of the redraw's duration
_LAST_REDRAW = "live_last_redraw"  # session_state: when the live panel last redrew
_REDRAW_INTERVAL = "live_redraw_interval"  # ...and a running mean of the time between redraws
PAUSE_GAP_S = 10.0
KEEPALIVE_SECONDS = 30.0  # a paused page tells the service it is still there
# A picklable recipe for the trainer, built in the worker (see training.service.builders).
Recipe = Callable[[list[RunConfig]], Callable[[], Any]]


@dataclass
class LiveTraining:
    """One session's trainer: its handle in the service and what it was built for."""

    identity: tuple
    handle: TrainerHandle | SessionHandle

    @property
    def runs(self) -> list[RunView]:
        return self.handle.runs

    @property
    def steps(self) -> int:
        return self.handle.steps

    @property
    def playing(self) -> bool:
        return self.handle.playing

    @property
    def error(self) -> str:
        return self.handle.crashed or self.handle.error

    def apply(self, configs: list[RunConfig]) -> None:
        """Bring the running hyper-parameters in line with `configs` (next step on)."""
        self.handle.set_params(configs)


def _identity(configs: list[RunConfig]) -> tuple:
    return tuple(tuple(getattr(c, name) for name in STRUCTURAL) for c in configs)


def live_training(
    slot: str, configs: list[RunConfig], recipe: Recipe, *, setup: tuple = ()
) -> LiveTraining | None:
    """The session's trainer in `slot` for `configs`: a new one when the setup changed
    (dataset, loss, dimension, seed, or anything in `setup`, e.g. which people), or when the
    old one is gone (crashed, or ended after its tab was away); otherwise the old one with
    the new hyper-parameters.

    Returns None (with a message on the page) when the data set cannot be had.
    """
    identity = (_identity(configs), setup)
    live: LiveTraining | None = st.session_state.get(slot)
    if live is not None and live.handle.closed:
        live = None  # ended by the service (no poll for its TTL): start afresh
    if live is None or live.identity != identity:
        if live is not None:
            training_service().close(live.handle)
        try:
            with st.spinner("Preparing the data and the model…"):
                handle = training_service().create(recipe(configs))
        except DatasetUnavailable as error:
            st.session_state.pop(slot, None)
            st.warning(str(error), icon=":material/cloud_off:")
            return None
        live = LiveTraining(identity, handle)
        st.session_state[slot] = live
    else:
        live.apply(configs)
    live.handle.touch()
    return live


def reset(slot: str) -> None:
    """Start the session's run afresh: a shared-run session gets a run of its own at step 0
    (session.py); a trainer of its own is closed and made again at the next rerun."""
    live: LiveTraining | None = st.session_state.get(slot)
    if live is None:
        return
    if live.handle.alive and hasattr(live.handle, "reset"):
        live.handle.reset()
        return
    st.session_state.pop(slot, None)
    training_service().close(live.handle)


def transport(live: LiveTraining, slot: str, *, speed: int) -> None:
    """Play / Pause, Step, Reset buttons.

    Each acts in its on_click callback, which Streamlit runs first thing when the click
    arrives: a script run that a live tick interrupts cannot lose the click (with the work
    in the button's `if`, a click during a busy tick was lost now and then, and Pause then
    did nothing)."""
    handle = live.handle
    alive = handle.alive
    play, step, reset_col = st.columns(3)
    if live.playing:
        play.button("Pause", icon=":material/pause:", width="stretch", on_click=handle.pause)
    else:
        play.button(
            "Play",
            icon=":material/play_arrow:",
            type="primary",
            width="stretch",
            disabled=not alive,
            on_click=handle.play,
        )
    step.button(
        "Step",
        icon=":material/skip_next:",
        width="stretch",
        disabled=not alive,
        on_click=handle.step,
        args=(speed,),
    )
    reset_col.button(
        "Reset", icon=":material/restart_alt:", width="stretch", on_click=reset, args=(slot,)
    )
    first = live.runs[0]
    st.caption(f"Device: {first.device.type} · data: {first.source}")


def run_every(live: LiveTraining) -> float | None:
    """The fragment's rerun interval: ticking while playing (as often as the redraws leave
    room for, see DRAW_SHARE), still while paused."""
    if not live.playing:
        return None
    return max(TICK_SECONDS, st.session_state.get(_DRAW_SECONDS, 0.0) / DRAW_SHARE)


def redraw_interval() -> float:
    """Seconds between this session's live redraws as they really come (a running mean; a gap
    of over PAUSE_GAP_S is a pause, not a redraw interval). Call once per redraw."""
    now = time.monotonic()
    last = st.session_state.get(_LAST_REDRAW)
    st.session_state[_LAST_REDRAW] = now
    if last is not None and now - last < PAUSE_GAP_S:
        return _fold(_REDRAW_INTERVAL, now - last, start=TICK_SECONDS)
    return st.session_state.get(_REDRAW_INTERVAL, TICK_SECONDS)


def timed_draw(draw: Callable[[], None]) -> None:
    """Run one redraw and fold its duration into the session's running mean."""
    start = time.perf_counter()
    draw()
    _fold(_DRAW_SECONDS, time.perf_counter() - start)


def _fold(key: str, value: float, *, start: float | None = None) -> float:
    """Fold `value` into the session's running mean under `key` (the mean so far is `start`
    when there is none yet; with no `start`, the first value is the mean) and return it."""
    mean = st.session_state.get(key, start)
    mean = value if mean is None else 0.7 * mean + 0.3 * value
    st.session_state[key] = mean
    return mean


def keepalive(live: LiveTraining) -> None:
    """Poll the service while the page shows a paused trainer (draws nothing)."""

    @st.fragment(run_every=KEEPALIVE_SECONDS)
    def _poll() -> None:
        live.handle.touch()

    _poll()


def adopt(slot: str, handle: TrainerHandle | SessionHandle) -> None:
    """Make a loaded trainer the session's, and the lab's settings match it (and the URL)."""
    old: LiveTraining | None = st.session_state.get(slot)
    if old is not None:
        training_service().close(old.handle)
    configs = [run.config for run in handle.runs]
    st.session_state[slot] = LiveTraining((_identity(configs), ()), handle)
    first = configs[0]
    changes: dict[str, Any] = {
        "dataset": first.dataset,
        "device": first.device,  # part of the trainer's identity: a mismatch would rebuild it
        "dim": first.dim,
        "seed": first.seed,
        "policy": first.policy,
        "lr": first.lr,
    }
    if handle.kind == "comparison":
        changes["losses"] = tuple(config.loss for config in configs)
    else:
        changes["loss"] = first.loss
    for config in configs:
        for name in tunable_params(config.loss):
            changes.setdefault(name, getattr(config, name))
    update_config(**changes)
