"""Sidebar controls that read and write the session's LabConfig.

The LabConfig is the one source of truth: each widget's value is set from it before the
widget is drawn, and a widget's on_change writes the new value back (and so into the URL).
Margin sliders show the current loss's parameters only; a parameter left unset in the
config shows the engine's default for this loss and dimension.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import streamlit as st

from marginlab.data.datasets import DATASETS
from marginlab.figures.style import LOSS_NAMES
from marginlab.lab_state import LAB_LOSSES, LabConfig, tunable_params
from marginlab.params import PARAMS
from marginlab.training.config import available_devices
from ui.state import current_config, update_config

DATASET_NAMES = {
    "mnist-toy": "MNIST subset (offline)",
    "mnist": "MNIST, full (download)",
    "olivetti": "Olivetti faces (download)",
    "lfw": "LFW faces (download)",
}
POLICY_NAMES = {
    "fallback": "fallback (ArcFace's code, generalised)",
    "easy": "easy margin",
    "none": "none (raw)",
}


# Sliders, with an explicit step (keyboard arrows use it), over the one table's ranges
# (params.py): the URL, the CLI and the heads accept exactly what a slider can reach.
SLIDER_PARAMS = ("s", "m1", "m2", "m3", "lam", "center_lambda", "center_alpha", "m", "h",
                 "t_alpha", "l_a", "u_a", "l_m", "u_m", "lambda_g", "sigma")  # fmt: skip


def _widget_key(name: str) -> str:
    return f"control_{name}"


def _write_back(name: str, convert: Callable[[Any], Any] = lambda v: v) -> Callable[[], None]:
    def callback() -> None:
        update_config(**{name: convert(st.session_state[_widget_key(name)])})

    return callback


def show_value(key: str, value: Any) -> None:
    """Make the keyed widget show `value`, pushing it only when it differs from what the
    widget holds (the value changed elsewhere: a lesson, a loaded run, a link). Pushing it on
    every run raced the user: during a burst of arrow keys, a run for an earlier key set the
    slider (and then the next tick's widget state, and the URL) back to that earlier value."""
    if key not in st.session_state or st.session_state[key] != value:
        st.session_state[key] = value


def _bound(name: str, value: Any, convert: Callable[[Any], Any] = lambda v: v) -> dict:
    """A widget's `key` and `on_change` for the config field `name`: it shows `value` and
    writes its new value back through `convert`."""
    key = _widget_key(name)
    show_value(key, value)
    return {"key": key, "on_change": _write_back(name, convert)}


def margin_controls(
    config: LabConfig,
    resolved: dict[str, Any],
    *,
    names: tuple[str, ...] | None = None,
    where: Any = st,
) -> None:
    """Sliders for `names` (default: the current loss's); `resolved` holds every value."""
    for name in names if names is not None else tunable_params(config.loss):
        value = resolved[name]
        if name == "lam" and resolved.get("lambda_schedule", False):
            continue  # λ follows the schedule; the slider would be ignored
        param = PARAMS[name]
        if name in SLIDER_PARAMS:
            shown = min(max(float(value), param.low), param.high)
            help_text = param.help
            if param.unit == "rad":
                help_text += f" Now {math.degrees(shown):.1f}°."
            where.slider(
                param.label,
                float(param.low),
                float(param.high),
                step=param.step,
                **_bound(name, shown, float),
                help=help_text,
            )
        elif param.kind == "int":
            where.select_slider(
                param.label,
                options=list(range(int(param.low), int(param.high) + 1)),
                **_bound(name, int(value), int),
                help=param.help,
            )
        elif param.kind == "bool":
            where.toggle(
                param.label,
                **_bound(name, bool(value), bool),
                help=param.help,
            )
        elif param.kind == "choice":
            where.radio(
                param.label,
                options=list(param.choices),
                format_func=POLICY_NAMES.get,
                **_bound(name, str(value)),
                horizontal=True,
            )


def setup_controls(config: LabConfig, *, show_loss: bool = True, where: Any = st) -> None:
    """Dataset, loss, dimension and seed: changing one starts a new run."""
    where.selectbox(
        "dataset",
        options=list(DATASETS),
        format_func=DATASET_NAMES.get,
        **_bound("dataset", config.dataset),
    )
    if show_loss:
        where.selectbox(
            "loss",
            options=list(LAB_LOSSES),
            format_func=LOSS_NAMES.get,
            **_bound("loss", config.loss),
        )
    where.radio(
        PARAMS["dim"].label,
        options=list(PARAMS["dim"].options),
        format_func=lambda d: f"{d}-D ({'circle' if d == 2 else 'sphere'})",
        **_bound("dim", config.dim, int),
        horizontal=True,
    )
    devices = available_devices()
    if len(devices) > 1:
        where.selectbox(
            "device",
            options=["auto", *devices],
            **_bound("device", config.device if config.device in devices else "auto"),
            help="auto: CUDA, then Apple's MPS, then the CPU.",
        )
    where.number_input(
        PARAMS["seed"].label,
        min_value=int(PARAMS["seed"].low),
        max_value=int(PARAMS["seed"].high),
        step=1,
        **_bound("seed", config.seed, int),
    )


def training_controls(config: LabConfig, resolved: dict[str, Any], *, where: Any = st) -> None:
    """Learning rate and speed: they apply from the next step on."""
    rates = PARAMS["lr"].options
    lr = min(rates, key=lambda r: abs(math.log(r / float(resolved["lr"]))))
    where.select_slider(
        PARAMS["lr"].label,
        options=list(rates),
        format_func=lambda r: f"{r:g}",
        **_bound("lr", lr, float),
    )
    speed = PARAMS["speed"]
    where.slider(
        speed.label,
        int(speed.low),
        int(speed.high),
        step=int(speed.step),
        **_bound("speed", config.speed, int),
        help=speed.help,
    )


def presenter_toggle(*, where: Any = st) -> bool:
    config = current_config()
    where.toggle(
        "presenter mode",
        **_bound("presenter", config.presenter, bool),
        help="Larger type and markers, fewer controls: for a projector.",
    )
    return current_config().presenter
