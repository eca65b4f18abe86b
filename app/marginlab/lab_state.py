"""The lab's whole configuration as one dataclass, and its round trip through a URL.

A teacher copies the address bar and the class gets the same setup: page, dataset, loss(es),
dimension, s, m, seed. Query values come from strangers, so parsing never raises: a bad value
falls back to its default and leaves a note the page shows.

Hyper-parameters left as None mean "the engine's default for this loss and dimension"
(see training.default_config), so a link that names only `loss=cosface` gets CosFace's
good defaults rather than ArcFace's numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from marginlab.data.datasets import DATASETS
from marginlab.losses.registry import DEFAULT_COMPARE, LOSS_NAMES, loss_spec
from marginlab.params import MAX_COMPARE, PARAMS
from marginlab.training.config import DEVICES, RunConfig, default_config

PAGES: tuple[str, ...] = (
    "lab", "compare", "formulas", "phase-map", "paper", "lessons", "faces", "about"
)  # fmt: skip
# Every loss in the registry can be chosen in the lab.
LAB_LOSSES: tuple[str, ...] = LOSS_NAMES
__all__ = ["DEFAULT_COMPARE", "LAB_LOSSES", "MAX_COMPARE", "LabConfig", "from_query", "to_query"]


@dataclass(frozen=True)
class LabConfig:
    page: str = "lab"
    dataset: str = "mnist-toy"
    loss: str = "arcface"
    losses: tuple[str, ...] = DEFAULT_COMPARE
    dim: int = 2
    seed: int = 0
    s: float | None = None
    m1: float | None = None
    m2: float | None = None
    m3: float | None = None
    sphere_m: int | None = None
    lam: float | None = None
    lambda_schedule: bool | None = None
    policy: str | None = None  # None: the loss's own (MagFace's is "easy", the rest "fallback")
    center_lambda: float | None = None
    center_alpha: float | None = None
    # the post-2020 family (params.py)
    m: float | None = None
    h: float | None = None
    t_alpha: float | None = None
    l_a: float | None = None
    u_a: float | None = None
    l_m: float | None = None
    u_m: float | None = None
    lambda_g: float | None = None
    sigma: float | None = None
    lr: float | None = None
    speed: int = 5
    presenter: bool = False
    lesson: str = ""
    device: str = "auto"
    notes: tuple[str, ...] = field(default=(), compare=False)

    def with_changes(self, **changes: Any) -> LabConfig:
        return replace(self, **changes)


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def _table(name: str) -> Callable[[str], Any]:
    """The parser of a hyper-parameter: the one table's type and range (params.py)."""
    return PARAMS[name].parse


def _lab_dim(raw: str) -> int:
    """The table's dim, narrowed to the dimensions the lab draws (circle, sphere)."""
    value = PARAMS["dim"].parse(raw)
    if value not in PARAMS["dim"].options:
        choices = " or ".join(str(d) for d in PARAMS["dim"].options)
        raise ValueError(f"dim must be {choices} in the lab (the CLI takes any d)")
    return value


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _loss_list(raw: str) -> tuple[str, ...]:
    parse_loss = _choice(LAB_LOSSES)
    names = tuple(dict.fromkeys(parse_loss(part) for part in raw.split(",") if part.strip()))
    if not 1 <= len(names) <= MAX_COMPARE:
        raise ValueError(f"needs 1 to {MAX_COMPARE} losses")
    return names


def _lesson_id(raw: str) -> str:
    value = raw.strip()
    if not value or len(value) > 64 or not all(c.isalnum() or c in "-_" for c in value):
        raise ValueError("must be a short lesson id (letters, digits, - and _)")
    return value


# The accepted range of every field: hyper-parameters from the one table (params.py), which
# the sliders, the CLI and the heads read too.
_TABLE_FIELDS = ("seed", "s", "m1", "m2", "m3", "sphere_m", "lam", "lambda_schedule", "policy",
                 "center_lambda", "center_alpha", "lr", "speed", "m", "h", "t_alpha", "l_a",
                 "u_a", "l_m", "u_m", "lambda_g", "sigma")  # fmt: skip
PARSERS: dict[str, Callable[[str], Any]] = {
    "page": _choice(PAGES),
    "dataset": _choice(DATASETS),
    "loss": _choice(LAB_LOSSES),
    "losses": _loss_list,
    "dim": _lab_dim,
    **{name: _table(name) for name in _TABLE_FIELDS},
    "presenter": _boolean,
    "lesson": _lesson_id,
    "device": _choice(DEVICES),
}
MAX_QUERY_VALUE = 200


def from_query(params: Mapping[str, str | list[str]]) -> LabConfig:
    """Parse URL query parameters; unknown keys are ignored, bad values noted and defaulted."""
    values: dict[str, Any] = {}
    notes: list[str] = []
    for name, parse in PARSERS.items():
        if name not in params:
            continue
        raw = params[name]
        if isinstance(raw, list):  # st.query_params.to_dict() keeps the last; be as lenient
            raw = raw[-1] if raw else ""
        shown = str(raw)[:40]
        if len(str(raw)) > MAX_QUERY_VALUE:
            notes.append(f"Ignored the URL value of {name}: too long.")
            continue
        try:
            values[name] = parse(str(raw))
        except ValueError as error:
            notes.append(f"Ignored the URL value {name}={shown!r}: {_reason(name, error)}.")
    return LabConfig(**values, notes=tuple(notes))


def _reason(name: str, error: ValueError) -> str:
    """The parser's message, starting with the field's name ("m2 must lie in ...")."""
    text = str(error)
    return text if name in text else f"it {text}"


def to_query(config: LabConfig) -> dict[str, str]:
    """The URL query for a configuration: only what differs from the defaults, as text."""
    default = LabConfig()
    query: dict[str, str] = {}
    for item in fields(LabConfig):
        if item.name == "notes":
            continue
        value = getattr(config, item.name)
        if value is None or value == getattr(default, item.name):
            continue
        query[item.name] = _format(value)
    return query


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def tunable_params(loss: str) -> tuple[str, ...]:
    """The hyper-parameters of `loss` the lab lets a user set (order: display order), from its
    registry entry. Center loss's λ and α belong to the "center" loss only: on the Compare page
    an explicit center λ must not switch center loss on for every other head.
    """
    return loss_spec(loss).tunable


def run_config(config: LabConfig, loss: str | None = None) -> RunConfig:
    """The engine's RunConfig for the lab's setup: the loss's defaults for this dimension,
    overridden by every value the user (or the URL) set explicitly that the loss uses."""
    loss = loss or config.loss
    names = (*tunable_params(loss), "lr")
    explicit = {name: getattr(config, name) for name in names if getattr(config, name) is not None}
    if config.policy is not None:
        explicit["policy"] = config.policy
    return default_config(
        loss, config.dim, config.dataset, seed=config.seed, device=config.device, **explicit
    )
