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


def _prepare(name: str, value: Any) -> str:
    key = _widget_key(name)
    st.session_state[key] = value
    return key


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
                key=_prepare(name, shown),
                on_change=_write_back(name, float),
                help=help_text,
            )
        elif param.kind == "int":
            where.select_slider(
                param.label,
                options=list(range(int(param.low), int(param.high) + 1)),
                key=_prepare(name, int(value)),
                on_change=_write_back(name, int),
                help=param.help,
            )
        elif param.kind == "bool":
            where.toggle(
                param.label,
                key=_prepare(name, bool(value)),
                on_change=_write_back(name, bool),
                help=param.help,
            )
        elif param.kind == "choice":
            where.radio(
                param.label,
                options=list(param.choices),
                format_func=POLICY_NAMES.get,
                key=_prepare(name, str(value)),
                on_change=_write_back(name),
                horizontal=True,
            )


def setup_controls(config: LabConfig, *, show_loss: bool = True, where: Any = st) -> None:
    """Dataset, loss, dimension and seed: changing one starts a new run."""
    where.selectbox(
        "dataset",
        options=list(DATASETS),
        format_func=DATASET_NAMES.get,
        key=_prepare("dataset", config.dataset),
        on_change=_write_back("dataset"),
    )
    if show_loss:
        where.selectbox(
            "loss",
            options=list(LAB_LOSSES),
            format_func=LOSS_NAMES.get,
            key=_prepare("loss", config.loss),
            on_change=_write_back("loss"),
        )
    where.radio(
        PARAMS["dim"].label,
        options=list(PARAMS["dim"].options),
        format_func=lambda d: f"{d}-D ({'circle' if d == 2 else 'sphere'})",
        key=_prepare("dim", config.dim),
        on_change=_write_back("dim", int),
        horizontal=True,
    )
    devices = available_devices()
    if len(devices) > 1:
        where.selectbox(
            "device",
            options=["auto", *devices],
            key=_prepare("device", config.device if config.device in devices else "auto"),
            on_change=_write_back("device"),
            help="auto: CUDA, then Apple's MPS, then the CPU.",
        )
    where.number_input(
        PARAMS["seed"].label,
        min_value=int(PARAMS["seed"].low),
        max_value=int(PARAMS["seed"].high),
        step=1,
        key=_prepare("seed", config.seed),
        on_change=_write_back("seed", int),
    )


def training_controls(config: LabConfig, resolved: dict[str, Any], *, where: Any = st) -> None:
    """Learning rate and speed: they apply from the next step on."""
    rates = PARAMS["lr"].options
    lr = min(rates, key=lambda r: abs(math.log(r / float(resolved["lr"]))))
    where.select_slider(
        PARAMS["lr"].label,
        options=list(rates),
        format_func=lambda r: f"{r:g}",
        key=_prepare("lr", lr),
        on_change=_write_back("lr", float),
    )
    speed = PARAMS["speed"]
    where.slider(
        speed.label,
        int(speed.low),
        int(speed.high),
        step=int(speed.step),
        key=_prepare("speed", config.speed),
        on_change=_write_back("speed", int),
        help=speed.help,
    )


def presenter_toggle(*, where: Any = st) -> bool:
    config = current_config()
    where.toggle(
        "presenter mode",
        key=_prepare("presenter", config.presenter),
        on_change=_write_back("presenter", bool),
        help="Larger type and markers, fewer controls: for a projector.",
    )
    return current_config().presenter
