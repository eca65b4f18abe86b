"""What a training run is made of: `RunConfig`, good defaults per (loss, dimension), the papers'
presets, and the schedules (margin warm-up, learning rate) as pure functions of the step.

Everything here is plain data: a RunConfig round-trips through JSON (`asdict` / `from_dict`),
so it can be saved in a run file, sent on the command line and put in a URL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch

from marginlab.data.datasets import DATASETS
from marginlab.losses.heads import build_head
from marginlab.losses.registry import loss_spec
from marginlab.params import HEAD_PARAMS, PARAMS

# The head's hyper-parameters that a RunConfig carries (names as in heads.build_head).
HEAD_FIELDS: tuple[str, ...] = HEAD_PARAMS
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
# Upper bounds of the values that size a run's memory, so no config (a run file from a
# stranger included) can ask for more than a classroom server has. The hyper-parameters' bounds
# are the one table's (params.py says why each); the history's are the run's own: 1,000
# snapshots, 1 GB.
MAX_DIM = int(PARAMS["dim"].high)
MAX_K = int(PARAMS["k"].high)
MAX_PROBE = int(PARAMS["probe_size"].high)
MAX_BATCH = int(PARAMS["batch_size"].high)
MAX_SEED = int(PARAMS["seed"].high)
MAX_STEPS = int(PARAMS["margin_warmup_steps"].high)
MAX_HISTORY = 1000
MAX_HISTORY_MB = 1024.0


@dataclass(frozen=True)
class RunConfig:
    """One training run. Angles in radians; `lr` is Adam's (AdamW, decoupled weight decay).

    Schedules, both functions of the step so a run resumes exactly:
    - margin warm-up: m2, m3, (m1 − 1), AdaFace's m and MagFace's l_m, u_m grow linearly from
      0 to their values over the first `margin_warmup_steps` steps (SphereFace's λ annealing
      is its own warm-up; ElasticFace draws around the ramped mean with its full σ).
    - learning rate: cosine from `lr` down to `lr · lr_min_factor` over `lr_decay_steps`, then
      constant, so a live run can go on for ever at a small learning rate.
    """

    dataset: str = "mnist-toy"
    loss: str = "arcface"
    dim: int = 2
    # --- the head (see heads.py; the margin names are those of margins.target_logit)
    s: float = 16.0
    m1: float = 1.0
    m2: float = 0.2
    m3: float = 0.0
    sphere_m: int = 4
    lam: float = 5.0
    lambda_schedule: bool = True
    policy: str = "fallback"
    center_lambda: float = 0.0
    center_alpha: float = 0.5
    bias: bool = False
    k: int = 3
    # --- the post-2020 family (AdaFace, MagFace, ElasticFace; params.py has what each means)
    m: float = 0.2
    h: float = 0.333
    t_alpha: float = 0.01
    l_a: float = 1.0
    u_a: float = 10.0
    l_m: float = 0.1
    u_m: float = 0.3
    lambda_g: float = 1.0
    sigma: float = 0.05
    # --- optimisation
    lr: float = 1e-2
    weight_decay: float = 5e-4
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"
    margin_warmup_steps: int = 200
    lr_decay_steps: int = 1500
    lr_min_factor: float = 0.05
    # --- snapshots
    probe_size: int = 1000
    snapshot_every: int = 25
    history_size: int = 400
    history_memory_mb: float = 64.0

    def __post_init__(self) -> None:
        validate_config(self)
        # The registry's rule: a parameter the loss does not use was checked, and is ignored —
        # the config (hence snapshots and run files) keeps its neutral value, never a margin
        # the run does not train with.
        for name, value in loss_spec(self.loss).neutralised(self.head_params()).items():
            object.__setattr__(self, name, value)

    def head_params(self) -> dict[str, Any]:
        """The keyword arguments of heads.build_head for this config's loss."""
        return {name: getattr(self, name) for name in HEAD_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """A config from `to_dict()` output; unknown keys raise ValueError (no silent drops)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown RunConfig fields: {', '.join(unknown)}")
        return cls(**dict(values))

    def with_changes(self, **changes: Any) -> RunConfig:
        return replace(self, **changes)


def validate_config(config: RunConfig) -> None:
    """ValueError with a one-line message for anything a run cannot be built from."""
    if config.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {config.dataset!r}; choose one of {', '.join(DATASETS)}")
    loss_spec(config.loss)  # ValueError naming the choices
    if config.device not in DEVICES:
        raise ValueError(f"unknown device {config.device!r}; choose one of {', '.join(DEVICES)}")
    for name in _RUN_PARAMS:  # the ranges of the one parameter table (params.py)
        param = PARAMS[name]
        if param.kind == "int":  # strictly an int: a run file's 3.0 is no dimension
            _whole(name, getattr(config, name), low=int(param.low), high=int(param.high))
        else:
            param.check(getattr(config, name))
    _whole("history_size", config.history_size, low=1, high=MAX_HISTORY)
    _positive("history_memory_mb", config.history_memory_mb)
    if config.history_memory_mb > MAX_HISTORY_MB:
        raise ValueError(f"history_memory_mb must be at most {MAX_HISTORY_MB:g}")
    if not (isinstance(config.lr_min_factor, int | float) and 0 <= config.lr_min_factor <= 1):
        raise ValueError(f"lr_min_factor must lie in [0, 1], got {config.lr_min_factor!r}")
    # The head validates its own numbers (s > 0, m2 in [0, π], ...) with readable messages;
    # building one draws random weights, so fork the RNG: validating must not change it.
    with torch.random.fork_rng(devices=[]):
        build_head(config.loss, 1, 2, **config.head_params())


# The table's run-level numbers, and k (it sizes the head): checked here, strictly typed.
_RUN_PARAMS = ("dim", "k", "seed", "lr", "weight_decay", "batch_size", "margin_warmup_steps",
               "lr_decay_steps", "probe_size", "snapshot_every")  # fmt: skip


def _whole(name: str, value: object, *, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number in [{low}, {high:,}], got {value!r}")


def _positive(name: str, value: object) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a positive number, got {value!r}")


# ----- defaults ---------------------------------------------------------------------------
def default_config(loss: str, dim: int, dataset: str = "mnist-toy", **changes: Any) -> RunConfig:
    """Settings with which `loss` trains cleanly in `dim` dimensions: its registry entry's
    defaults for that dimension (measured on mnist-toy; tests/test_training.py states the
    accuracies). Parameters the loss does not use hold their neutral values (no margin), so a
    config built for one loss never carries another's margin. `changes` override anything.
    """
    values = {name: PARAMS[name].default for name in HEAD_FIELDS}
    values.update(loss_spec(loss).defaults(int(dim)))
    return RunConfig(dataset=dataset, loss=loss, dim=dim, **{**values, **changes})


def paper_preset(loss: str, dim: int = 2, dataset: str = "mnist-toy", **changes: Any) -> RunConfig:
    """The papers' s and m for `loss` (its registry entry's `paper_preset`; 512-D faces in the
    papers), no margin warm-up, as in the papers.

    Very hard in 2-D (ArcFace m = 0.5 leaves each of ten classes a 3.7° half-width); the run
    may not converge, but the engine's guard keeps it free of NaN.
    """
    preset = {**loss_spec(loss).paper_preset, "margin_warmup_steps": 0, **changes}
    return default_config(loss, dim, dataset, **preset)


# ----- schedules ---------------------------------------------------------------------------
def margin_ramp(step: int, warmup_steps: int) -> float:
    """Fraction of the margin in force at 0-based `step`: linear from 1/warmup up to 1."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


_RAMPED = ("m", "l_m", "u_m")  # AdaFace's and MagFace's margins


def ramped_margin(config: RunConfig, step: int) -> dict[str, float]:
    """The margin parameters the head uses at `step` (warm-up applied; only margin names)."""
    ramp = margin_ramp(step, config.margin_warmup_steps)
    spec = loss_spec(config.loss)
    return {
        "m1": 1.0 + (config.m1 - 1.0) * ramp,
        "m2": config.m2 * ramp,
        "m3": config.m3 * ramp,
        # Only where the loss uses them: elsewhere they keep their neutral values unramped.
        **{name: getattr(config, name) * ramp for name in _RAMPED if spec.uses(name)},
    }


def learning_rate(config: RunConfig, step: int) -> float:
    """Learning rate at 0-based `step`: cosine from lr to lr·lr_min_factor, then constant."""
    if config.lr_decay_steps <= 0:
        return config.lr
    progress = min(1.0, step / config.lr_decay_steps)
    floor = config.lr_min_factor
    return config.lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def pick_device(name: str = "auto") -> torch.device:
    """ "auto" → cuda, then mps, then cpu; an explicit name must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' is not available here; use --device auto or cpu")
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device 'mps' is not available here; use --device auto or cpu")
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    return torch.device(name)


def device_available(name: str) -> bool:
    """Whether `pick_device(name)` would succeed on this machine ("auto" and "cpu" always)."""
    try:
        pick_device(name)
    except ValueError:
        return False
    return True


def available_devices() -> list[str]:
    """The devices this machine can train on (the CPU always)."""
    return ["cpu", *(name for name in ("cuda", "mps") if device_available(name))]


def uses(loss: str, name: str) -> bool:
    """Whether the head of `loss` uses hyper-parameter `name` (centre terms: every head)."""
    return loss_spec(loss).uses(name)
