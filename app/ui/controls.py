"""Sidebar controls that read and write the session's LabConfig.

The LabConfig is the one source of truth: each widget's value is set from it before the
widget is drawn, and a widget's on_change writes the new value back (and so into the URL).
Margin sliders show the current loss's parameters only; a parameter left unset in the
config shows the engine's default for this loss and dimension.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from marginlab.data.datasets import DATASETS
from marginlab.figures.style import LOSS_NAMES
from marginlab.lab_state import LAB_LOSSES, LabConfig, tunable_params
from marginlab.losses.margins import POLICIES
from marginlab.training.config import device_available
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


@dataclass(frozen=True)
class Slider:
    label: str
    low: float
    high: float
    step: float
    help: str


# Slider ranges: within LabConfig's URL limits, with an explicit step (keyboard arrows use it).
SLIDERS: dict[str, Slider] = {
    "s": Slider("scale s", 1.0, 100.0, 0.5, "Multiplies every cosine logit: a temperature."),
    "m1": Slider("m1 (multiplicative)", 0.5, 3.0, 0.05, "cos(m1·θ): SphereFace's angle factor."),
    "m2": Slider("m2 (additive angle, rad)", 0.0, 1.5, 0.01, "cos(θ + m2): ArcFace's margin."),
    "m3": Slider("m3 (cosine margin)", 0.0, 0.8, 0.01, "cos θ − m3: CosFace's margin."),
    "lam": Slider("λ (fixed mixing)", 0.0, 50.0, 0.5, "(λ cos θ + ψ)/(1 + λ)."),
    "center_lambda": Slider("center-loss weight λ", 0.0, 1.0, 0.005, "λ·½‖x − c_y‖²."),
    "center_alpha": Slider("centre step α", 0.0, 1.0, 0.05, "How fast centres follow."),
}
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


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
        if name in SLIDERS:
            spec = SLIDERS[name]
            shown = min(max(float(value), spec.low), spec.high)
            help_text = spec.help
            if name == "m2":
                help_text += f" Now {math.degrees(shown):.1f}°."
            where.slider(
                spec.label,
                spec.low,
                spec.high,
                step=spec.step,
                key=_prepare(name, shown),
                on_change=_write_back(name, float),
                help=help_text,
            )
        elif name == "sphere_m":
            where.select_slider(
                "SphereFace m (integer)",
                options=[1, 2, 3, 4, 5, 6],
                key=_prepare(name, int(value)),
                on_change=_write_back(name, int),
            )
        elif name == "lambda_schedule":
            where.toggle(
                "anneal λ (official schedule)",
                key=_prepare(name, bool(value)),
                on_change=_write_back(name, bool),
                help="λ = max(5, 1000·(1 + 0.12·t)⁻¹), as in SphereFace's released code.",
            )
        elif name == "policy":
            where.radio(
                "past θ + m > π",
                options=list(POLICIES),
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
        "embedding dimension",
        options=[2, 3],
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
        "seed",
        min_value=0,
        max_value=2**31 - 1,
        step=1,
        key=_prepare("seed", config.seed),
        on_change=_write_back("seed", int),
    )


def available_devices() -> list[str]:
    """The devices this machine can train on (the CPU always)."""
    return ["cpu"] + [name for name in ("cuda", "mps") if device_available(name)]


def training_controls(config: LabConfig, resolved: dict[str, Any], *, where: Any = st) -> None:
    """Learning rate and speed: they apply from the next step on."""
    lr = min(LEARNING_RATES, key=lambda r: abs(math.log(r / float(resolved["lr"]))))
    where.select_slider(
        "learning rate",
        options=list(LEARNING_RATES),
        format_func=lambda r: f"{r:g}",
        key=_prepare("lr", lr),
        on_change=_write_back("lr", float),
    )
    where.slider(
        "steps per update",
        1,
        50,
        step=1,
        key=_prepare("speed", config.speed),
        on_change=_write_back("speed", int),
        help="Optimisation steps between two redraws: higher trains faster, redraws less.",
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
