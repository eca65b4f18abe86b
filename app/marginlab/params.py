"""Every hyper-parameter once: type, range, step, unit, label, help and default.

The URL parser (lab_state), the sliders (ui/controls), the CLI flags (cli) and the heads'
validation (losses/heads) all read this table, so a value the slider cannot reach is one the
URL, the command line and `build_head` refuse too (tests/test_registry.py walks the table).

Ranges are the lab's, chosen once: wide enough for the papers' presets (s = 64, ArcFace
m = 0.5, CosFace m = 0.35, CM2's m1 = 0.9; LOSSES.md) and the toys, narrow enough that every
value trains without NaN (tests/test_heads.py checks finiteness over the whole table).
`margins.target_logit` itself accepts the wider mathematical domain (m2 ∈ [0, π]), so curves
can still show what happens past the table's ends.

Adding a parameter: one `Param` below (plus, for a loss that uses it, its name in that loss's
registry entry, losses/registry.py). docs/ARCHITECTURE.md says more.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

# What ArcFace-like angular margins do past θ + m > π (margins.py explains each).
POLICIES: tuple[str, ...] = ("fallback", "easy", "none")
# Runs in one lock-step comparison: the URL, the CLI and the engine take at most this many.
MAX_COMPARE = 6
# Fixed once a run exists: changing one means a new model (or new data), not a new step.
STRUCTURAL: tuple[str, ...] = ("dataset", "loss", "dim", "seed", "device", "bias", "k")


@dataclass(frozen=True)
class Param:
    """One hyper-parameter. `kind` is "float", "int", "bool" or "choice"; numbers lie in
    [low, high] (both included); `options`, where given, are the values a select slider offers."""

    name: str
    kind: str
    default: Any
    label: str
    help: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    unit: str = ""
    symbol: str = ""  # how a figure title writes it ("m", "λ"); the name if empty
    choices: tuple[str, ...] = ()
    options: tuple[float, ...] = ()
    flag: str = ""  # the CLI flag; "" for none

    def check(self, value: object) -> Any:
        """`value` as this parameter's type, or ValueError with one readable line."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{self.name} must be True or False, got {value!r}")
            return value
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise ValueError(
                    f"unknown {self.name} {value!r}; choose one of {', '.join(self.choices)}"
                )
            return value
        number = self._number(value)
        assert self.low is not None and self.high is not None
        if not self.low <= number <= self.high:
            raise ValueError(
                f"{self.named()} must lie in [{self.low:g}, {self.high:g}], got {value!r}"
            )
        return number

    def named(self) -> str:
        """The parameter as a message names it: its label, with its name where the label
        does not hold it ("s (scale s)" would say s twice; "lr (learning rate)",
        "sigma, σ (margin spread),")."""
        if self.name in self.label.replace("(", " ").split():
            return self.label
        return f"{self.name}, {self.label}," if "(" in self.label else f"{self.name} ({self.label})"

    def parse(self, raw: str) -> Any:
        """A value from text (a URL query or a command line), then `check`ed."""
        text = raw.strip()
        if self.kind == "bool":
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{self.name} must be true or false")
        if self.kind == "choice":
            return self.check(text.lower())
        try:
            value: float | int = int(text) if self.kind == "int" else float(text)
        except ValueError:
            raise ValueError(f"{self.name} must be a number, got {raw!r}") from None
        return self.check(value)

    def _number(self, value: object) -> float | int:
        number = as_number(self.name, value)
        if self.kind == "int":
            if number != int(number):
                raise ValueError(f"{self.name} must be a whole number, got {value!r}")
            return int(number)
        return number


def as_number(name: str, value: object) -> float:
    """A finite real as float; bools, strings ("1.5" too) and NaN/inf raise ValueError."""
    if isinstance(value, bool | str | bytes) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _p(name: str, kind: str, default: Any, label: str, help: str, **more: Any) -> Param:
    return Param(name, kind, default, label, help, **more)


# Log-spaced learning rates a select slider offers: keyboard arrows step through them.
LEARNING_RATES: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)

_TABLE: tuple[Param, ...] = (
    # ----- the heads (names as margins.target_logit's keywords, plus each head's own) -----
    _p("s", "float", 16.0, "scale s", "Multiplies every cosine logit: a temperature.",
       low=1.0, high=128.0, step=0.5, flag="--s", symbol="s"),
    _p("m1", "float", 1.0, "m1 (multiplicative)", "cos(m1·θ): SphereFace's angle factor.",
       low=0.5, high=3.0, step=0.05, flag="--m1"),
    _p("m2", "float", 0.0, "m2 (additive angle, rad)", "cos(θ + m2): ArcFace's margin.",
       low=0.0, high=1.5, step=0.01, unit="rad", flag="--m2"),
    _p("m3", "float", 0.0, "m3 (cosine margin)", "cos θ − m3: CosFace's margin.",
       low=0.0, high=1.0, step=0.01, flag="--m3"),
    _p("sphere_m", "int", 4, "SphereFace m (integer)",
       "The integer margin of the original A-Softmax: cos(mθ).",
       low=1, high=6, step=1, flag="--sphere-m", symbol="m"),
    _p("lam", "float", 5.0, "λ (fixed mixing)",
       "(λ cos θ + ψ)/(1 + λ); used when λ is not annealed.",
       low=0.0, high=100.0, step=0.5, flag="--lam", symbol="λ"),
    _p("lambda_schedule", "bool", True, "anneal λ (official schedule)",
       "λ = max(5, 1000·(1 + 0.12·t)⁻¹), as in SphereFace's released code."),
    _p("policy", "choice", "fallback", "past θ + m > π",
       "fallback (default), easy or none", choices=POLICIES, flag="--policy"),
    _p("bias", "bool", False, "bias", "Softmax's bias b_j (fixed when the head is built)."),
    _p("k", "int", 3, "sub-centres K", "Sub-centres per class (sub-center ArcFace).",
       low=1, high=16, step=1, flag="--k", symbol="K"),  # K = 3 in the paper, 10 in its ablation
    _p("center_lambda", "float", 0.0, "center-loss weight λ", "λ·½‖x − c_y‖².",
       low=0.0, high=1.0, step=0.005, flag="--center-lambda", symbol="λ"),
    _p("center_alpha", "float", 0.5, "centre step α", "How fast centres follow (Wen et al.: 0.5).",
       low=0.0, high=1.0, step=0.05, flag="--center-alpha", symbol="α"),
    # ----- the post-2020 family (losses/adaptive_margins.py; names from the issue) ---------
    _p("m", "float", 0.2, "m (AdaFace margin)",
       "AdaFace: cos(θ − m·ẑ) − (m + m·ẑ), ẑ the norm's standardised score.",
       low=0.0, high=1.0, step=0.01, flag="--m"),
    _p("h", "float", 0.333, "h (norm concentration)",
       "AdaFace: ẑ = clip(h·(‖x‖ − μ)/(σ + 0.001), −1, 1) (paper: 0.333).",
       low=0.01, high=2.0, step=0.01, flag="--h"),
    _p("t_alpha", "float", 0.01, "t_alpha (EMA weight)",
       "AdaFace: μ, σ ← t_alpha·batch value + (1 − t_alpha)·old (paper: 0.01).",
       low=0.0, high=1.0, step=0.01, flag="--t-alpha", symbol="α"),
    _p("l_a", "float", 1.0, "l_a (lowest magnitude)", "MagFace: a = clamp(‖x‖, l_a, u_a).",
       low=0.1, high=200.0, step=0.1, flag="--l-a"),
    _p("u_a", "float", 10.0, "u_a (highest magnitude)", "MagFace: a = clamp(‖x‖, l_a, u_a).",
       low=0.2, high=300.0, step=0.1, flag="--u-a"),
    _p("l_m", "float", 0.1, "l_m (margin at l_a, rad)", "MagFace: m(l_a) = l_m.",
       low=0.0, high=1.5, step=0.01, unit="rad", flag="--l-m"),
    _p("u_m", "float", 0.3, "u_m (margin at u_a, rad)", "MagFace: m(u_a) = u_m.",
       low=0.0, high=1.5, step=0.01, unit="rad", flag="--u-m"),
    _p("lambda_g", "float", 1.0, "λ_g (magnitude regulariser)",
       "MagFace: + λ_g·mean(a/u_a² + 1/a), which rewards large magnitudes (paper: 35).",
       low=0.0, high=100.0, step=0.5, flag="--lambda-g", symbol="λ_g"),
    _p("sigma", "float", 0.05, "σ (margin spread)",
       "ElasticFace: each sample's margin ~ N(m, σ) (paper: 0.05).",
       low=0.0, high=0.5, step=0.005, flag="--sigma", symbol="σ"),
    # ----- the run --------------------------------------------------------------------------
    _p("lr", "float", 1e-2, "learning rate", "AdamW learning rate.",
       low=1e-4, high=0.3, options=LEARNING_RATES, flag="--lr"),
    _p("weight_decay", "float", 5e-4, "weight decay", "AdamW weight decay.",
       low=0.0, high=0.5, flag="--weight-decay"),
    # Bounds that size a run's memory: no config (a run file from a stranger included) asks for
    # more than a classroom server has; steps bound schedules and snapshot intervals.
    _p("batch_size", "int", 128, "batch size", "Images per step (BatchNorm needs two).",
       low=2, high=4096, flag="--batch-size"),
    _p("margin_warmup_steps", "int", 200, "margin warm-up steps",
       "Steps of the linear margin ramp.", low=0, high=10**9, flag="--margin-warmup-steps"),
    _p("lr_decay_steps", "int", 1500, "learning-rate decay steps",
       "Steps of the cosine learning-rate decay.", low=0, high=10**9, flag="--lr-decay-steps"),
    _p("probe_size", "int", 1000, "probe size", "Test images embedded in each snapshot "
       "(at most MNIST's 10,000 test images).", low=1, high=10_000, flag="--probe-size"),
    _p("snapshot_every", "int", 25, "snapshot every", "Steps between snapshots.",
       low=1, high=10**9, flag="--snapshot-every"),
    # numpy's and most generators' seed range: larger seeds would alias.
    _p("seed", "int", 0, "seed", "Initial weights and batch order.", low=0, high=2**32 - 1),
    _p("dim", "int", 2, "embedding dimension",
       "2-D (circle), 3-D (sphere) or any d up to 1,024, twice the papers' 512 (CLI).",
       low=1, high=1024, options=(2, 3)),
    _p("speed", "int", 5, "steps per update",
       "Optimisation steps between two redraws: higher trains faster, redraws less.",
       low=1, high=50, step=1),
)  # fmt: skip

PARAMS: dict[str, Param] = {param.name: param for param in _TABLE}
# The hyper-parameters a head takes (build_head's keywords); the rest belong to the run.
HEAD_PARAMS: tuple[str, ...] = (
    "s",
    "m1",
    "m2",
    "m3",
    "sphere_m",
    "lam",
    "lambda_schedule",
    "policy",
    "center_lambda",
    "center_alpha",
    "bias",
    "k",
    *("m", "h", "t_alpha", "l_a", "u_a", "l_m", "u_m", "lambda_g", "sigma"),
)
# The names margins.target_logit takes besides `loss`.
MARGIN_PARAMS: tuple[str, ...] = ("m1", "m2", "m3", "sphere_m", "lam", "policy")


def check(name: str, value: object) -> Any:
    """PARAMS[name].check(value); an unknown name is a ValueError listing the known ones."""
    param = PARAMS.get(name)
    if param is None:
        raise ValueError(f"unknown parameter {name!r}; known: {', '.join(sorted(PARAMS))}")
    return param.check(value)


def default(name: str) -> Any:
    """The table's default of `name`: also the neutral value a loss that does not use it keeps."""
    return PARAMS[name].default
