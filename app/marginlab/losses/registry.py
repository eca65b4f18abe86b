"""The loss registry: everything a loss IS, once — one `LossSpec` per loss.

Name, label, paper, the branch of `margins.target_logit` its target class goes through (the one
margin function, DESIGN.md §3), how its logits are scaled, the hyper-parameters it uses with
their defaults per embedding dimension, the paper's preset, its phase-map axis and the angular
margin a figure draws. Heads, regions, curves, labels, formulas, the URL state, the CLI and the
phase map read it; outside `losses/` no code branches on a loss's name.

How a parameter a loss does not use is treated, the same way everywhere (head, RunConfig and
so snapshots and run files, URL, CLI): it is checked against params.PARAMS like any value (a
bad one is an error, or a note for a URL), then ignored — the loss's run holds the table's
neutral default for it (`LossSpec.neutralised`), so nothing downstream (a snapshot, a replay, a
figure) can draw a margin that training never had.

Adding a loss: one `LossSpec` in `_SPECS` (plus, at most, a ψ branch in margins.py and a head
class only if its weights or state change shape). docs/ARCHITECTURE.md walks through it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from marginlab.losses.margins import LOSSES as PSI_BRANCHES
from marginlab.losses.margins import target_logit_np
from marginlab.params import HEAD_PARAMS, MARGIN_PARAMS, PARAMS

# Every head takes the centre-loss terms (Wen et al., ECCV 2016): λ = 0 leaves it off.
CENTER_PARAMS: tuple[str, ...] = ("center_lambda", "center_alpha")
# s·cos; ‖x‖·cos (A-Softmax); raw W·x; a running s the head adapts itself (AdaCos).
SCALES: tuple[str, ...] = ("s", "norm", "none", "running")
# The parameters that move ψ away from cos θ (policy only says what happens past π).
_SHAPING = ("m1", "m2", "m3", "sphere_m", "lam", "m", "l_m", "u_m", "sigma")


def _dims(two: Mapping[str, Any], three: Mapping[str, Any], high: Mapping[str, Any]) -> dict:
    return {"2": dict(two), "3": dict(three), "high": dict(high)}


@dataclass(frozen=True)
class LossSpec:
    """One loss. `params` are the hyper-parameters its head uses besides the centre terms."""

    name: str
    label: str
    paper: str  # citation, "Authors, venue year" (as the formulas page shows it)
    branch: str  # margins.target_logit's `loss`
    scale: str  # one of SCALES
    head: str  # head kind (losses.heads.HEAD_KINDS)
    params: tuple[str, ...]
    by_dim: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # "2", "3", "high"
    paper_preset: Mapping[str, Any] = field(default_factory=dict)
    phase_axis: str | None = None  # the margin the phase map sweeps against s
    angular_param: str | None = None  # a parameter that IS the angular margin at any spacing
    symbols: Mapping[str, str] = field(default_factory=dict)  # names in figure titles
    lab_params: tuple[str, ...] | None = None  # the controls the lab shows (None: `params`)
    # The post-2020 family: ψ depends on the feature norm, a draw or a running state, so the
    # head computes it (losses/adaptive_margins.py) and regions, curves and formulas ask the
    # head and losses/adaptive_curves.py; `branch` then names the family it extends (labels).
    adaptive: bool = False

    # ----- parameters ---------------------------------------------------------------------
    @property
    def used(self) -> tuple[str, ...]:
        """Every hyper-parameter the head uses (its own, then the centre terms)."""
        return self.params + CENTER_PARAMS

    def uses(self, name: str) -> bool:
        return name in self.used

    @property
    def tunable(self) -> tuple[str, ...]:
        """The controls the lab shows for this loss, in display order (no structural ones)."""
        if self.lab_params is not None:
            return self.lab_params
        return tuple(name for name in self.params if name not in ("bias", "k"))

    def defaults(self, dim: int = 2) -> dict[str, Any]:
        """The used parameters' defaults for `dim`-dimensional embeddings (measured on
        mnist-toy; tests/test_training.py states the accuracies they reach)."""
        key = str(dim) if dim in (2, 3) else "high"
        chosen = self.by_dim.get(key, {})
        return {name: chosen.get(name, PARAMS[name].default) for name in self.used}

    def neutralised(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """`values` with every head parameter this loss does not use set to its neutral value."""
        return {
            name: (PARAMS[name].default if name in HEAD_PARAMS and not self.uses(name) else value)
            for name, value in values.items()
        }

    def head_values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The one rule for head parameters: every name is checked against params.PARAMS (an
        unknown name or a bad value raises ValueError), then only the names this loss uses are
        kept: an unused one is ignored, whatever its value."""
        out: dict[str, Any] = {}
        for name, value in params.items():
            if name not in HEAD_PARAMS:
                known = ", ".join(HEAD_PARAMS)
                raise ValueError(
                    f"unknown parameter {name!r} for loss {self.name!r}; known: {known}"
                )
            out[name] = PARAMS[name].check(value)
        return {name: value for name, value in out.items() if self.uses(name)}

    def margin_kwargs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The keywords of margins.target_logit for this loss: the margin names in `values`
        (unused ones neutral; absent ones take target_logit's own defaults)."""
        present = {name: values[name] for name in MARGIN_PARAMS if name in values}
        return {"loss": self.branch, **self.neutralised(present)}

    # ----- geometry -----------------------------------------------------------------------
    @property
    def has_band(self) -> bool:
        """Whether the target logit differs from cos θ (a margin band exists)."""
        return any(name in self.params for name in _SHAPING)

    @property
    def raw_logits(self) -> bool:
        """Logits are W·x with the weights' norms (softmax): regions are argmax W_j·u."""
        return self.scale == "none"

    def requested_margin(
        self, values: Mapping[str, Any], spacing: float | None = None
    ) -> float | None:
        """The angular margin (radians) a figure draws for this loss, or None.

        ArcFace-like losses: m2 itself (their band is m2 wide between any two neighbours
        whose spacing exceeds m2). Every other loss with a margin: the band's width on the
        great circle between two class weights `spacing` radians apart, from ψ itself
        (`band_width`); None without a spacing. For the combined margin CM1 (1, 0.3, 0.2)
        that is 28.8° at 60°, not m2 = 17.2°. Losses without a margin: None.
        """
        if not self.has_band:
            return None
        if self.adaptive and self.angular_param is None:
            return None  # the margin depends on the sample (its norm): no single angle
        if self.angular_param is not None:
            value = float(values.get(self.angular_param, 0.0))
            return value if value > 0 else None
        if spacing is None:
            return None
        return band_width(self, values, spacing)

    def describe(self, s: float | None = None, **values: Any) -> str:
        """'ArcFace (s = 30, m = 0.5 rad)': the label and only the parameters it uses."""
        values = {**values, **values.get("adaptive", {})}  # the post-2020 family's values
        parts = [f"s = {s:g}"] if s is not None and self.scale == "s" else []
        for name in self.params:
            if name not in _SHAPING:
                continue
            param = PARAMS[name]
            value = values.get(name, param.default)
            symbol = self.symbols.get(name, param.symbol or name)
            unit = f" {param.unit}" if param.unit else ""
            parts.append(f"{symbol} = {value:g}{unit}")
        policy = values.get("policy", "fallback")
        if "policy" in self.params and policy != "fallback":
            parts.append(f"policy {policy}")
        return f"{self.label} ({', '.join(parts)})" if parts else self.label


def band_width(spec: LossSpec, values: Mapping[str, Any], spacing: float) -> float:
    """Width (radians) of the margin band between two class weights `spacing` apart, measured
    along the great circle through both.

    At angle θ from W1 (so spacing − θ from W2), class 1 wins with margin where
    f(θ) = ψ(cos θ) − cos(spacing − θ) > 0 (any positive scale cancels, as in
    geometry.region_labels). With a decreasing ψ the band is [θ*, spacing − θ*], θ* the first
    zero of f, found on a 0.02° grid and interpolated linearly. Equivalently: the lead
    θ_other − θ_own a sample needs at the band's edge. (The lead needed at another θ_own
    differs for every loss but ArcFace: CM1 needs 35.6° at the edge for a 60° spacing, and
    28.8° for a sample sitting 60° from its own weight.) No direction won: the spacing.
    """
    spacing = float(spacing)
    if not 0 < spacing <= math.pi:
        raise ValueError(f"spacing must lie in (0, π], got {spacing!r}")
    theta = np.linspace(0.0, spacing / 2, max(2, int(math.degrees(spacing) * 50)))
    gap = target_logit_np(np.cos(theta), **spec.margin_kwargs(values)) - np.cos(spacing - theta)
    if gap[0] <= 0:
        return spacing
    lost = np.flatnonzero(gap <= 0)
    if not lost.size:
        return 0.0
    i = int(lost[0])
    edge = theta[i - 1] + (theta[i] - theta[i - 1]) * gap[i - 1] / (gap[i - 1] - gap[i])
    return float(max(0.0, spacing - 2 * edge))


_ANGULAR = ("s", "m2", "policy")
_SPECS: tuple[LossSpec, ...] = (
    LossSpec(
        "softmax", "Softmax", "—",
        branch="softmax", scale="none", head="linear", params=("bias",),
    ),
    LossSpec(
        "normface", "NormFace", "Wang et al., ACM MM 2017",
        branch="normface", scale="s", head="cosine", params=("s",),
        by_dim=_dims({"s": 16.0}, {"s": 16.0}, {"s": 30.0}), paper_preset={"s": 64.0},
    ),
    LossSpec(
        "sphereface", "SphereFace (A-Softmax)", "Liu et al., CVPR 2017",
        branch="sphereface", scale="norm", head="sphereface",
        params=("sphere_m", "lam", "lambda_schedule"),
        paper_preset={"sphere_m": 4, "lambda_schedule": True},
    ),
    LossSpec(
        "sphereface-arccos", "SphereFace (arccos form)",
        "ArcFace paper, Deng et al., CVPR 2019, Table 2",
        branch="sphereface-arccos", scale="s", head="cosine", params=("s", "m1", "policy"),
        by_dim=_dims({"s": 16.0, "m1": 1.35}, {"s": 16.0, "m1": 1.5}, {"s": 30.0, "m1": 1.35}),
        paper_preset={"s": 64.0, "m1": 1.35}, phase_axis="m1",
    ),
    LossSpec(
        "cosface", "CosFace", "Wang et al., CVPR 2018",
        branch="cosface", scale="s", head="cosine", params=("s", "m3"),
        by_dim=_dims({"s": 16.0, "m3": 0.1}, {"s": 16.0, "m3": 0.25}, {"s": 30.0, "m3": 0.35}),
        paper_preset={"s": 64.0, "m3": 0.35}, phase_axis="m3", symbols={"m3": "m"},
    ),
    LossSpec(
        "arcface", "ArcFace", "Deng et al., CVPR 2019",
        branch="arcface", scale="s", head="cosine", params=_ANGULAR,
        by_dim=_dims({"s": 16.0, "m2": 0.2}, {"s": 16.0, "m2": 0.4}, {"s": 30.0, "m2": 0.5}),
        paper_preset={"s": 64.0, "m2": 0.5}, phase_axis="m2", angular_param="m2",
        symbols={"m2": "m"},
    ),
    LossSpec(
        "combined", "Combined margin", "ArcFace paper, Deng et al., CVPR 2019, Eq. 4",
        branch="combined", scale="s", head="cosine", params=("s", "m1", "m2", "m3", "policy"),
        by_dim=_dims(
            {"s": 16.0, "m1": 1.0, "m2": 0.1, "m3": 0.05},
            {"s": 16.0, "m1": 1.0, "m2": 0.2, "m3": 0.1},
            {"s": 30.0, "m1": 1.0, "m2": 0.3, "m3": 0.2},
        ),
        paper_preset={"s": 64.0, "m1": 1.0, "m2": 0.3, "m3": 0.2}, phase_axis="m2",
    ),
    LossSpec(
        "center", "Softmax + center loss", "Wen et al., ECCV 2016",
        branch="softmax", scale="none", head="linear", params=("bias",),
        by_dim=_dims(*[{"center_lambda": 0.01}] * 3),  # the official MNIST toy's λ
        paper_preset={"center_lambda": 0.01, "center_alpha": 0.5},
        lab_params=CENTER_PARAMS,
    ),
    LossSpec(
        "subcenter-arcface", "Sub-center ArcFace", "Deng et al., ECCV 2020",
        branch="arcface", scale="s", head="subcenter", params=(*_ANGULAR, "k"),
        by_dim=_dims({"s": 16.0, "m2": 0.2}, {"s": 16.0, "m2": 0.4}, {"s": 30.0, "m2": 0.5}),
        paper_preset={"s": 64.0, "m2": 0.5, "k": 3}, phase_axis="m2", angular_param="m2",
        symbols={"m2": "m"},
    ),
)  # fmt: skip

# The post-2020 family (issue 15). Toy defaults measured on mnist-toy with the lab's run
# (warm-up 200; whole test set): 2-D after 500 steps AdaFace m = 0.1 92.8 / 92.5 % (seeds 0, 1;
# m = 0.2 gave 78.8 % on seed 0), MagFace 90.8–94.2 % (seeds 0–2), ElasticFace-Arc σ = 0.025
# 90.8 % (σ = 0.05: 82.0 % seed 0, 90.6 % seed 1), -Cos 91.1 % (seed 0); 3-D after 200 steps
# AdaFace 94.9 %, MagFace 93.3 %, ElasticFace-Arc 93.8 %, -Cos 93.9 %, CurricularFace 93.9 %,
# AdaCos 88.5 %. In 2-D CurricularFace does not train (34–43 % for m2 = 0, 0.1, 0.2 and s = 32:
# its hard-negative logit c·(t + c) pulls features towards a rival where c < −t/2, which 2-D
# negatives reach), nor does AdaCos settle (48 %: its s climbs to the ceiling, as in 3-D).
# The paper presets are each paper's 512-D, s = 64 settings (official training configs).
_ADAPTIVE_SPECS: tuple[LossSpec, ...] = (
    LossSpec(
        "adaface", "AdaFace", "Kim et al., CVPR 2022",
        branch="cosface", scale="s", head="adaface", params=("s", "m", "h", "t_alpha"),
        by_dim=_dims({"s": 16.0, "m": 0.1}, {"s": 16.0, "m": 0.4}, {"s": 30.0, "m": 0.4}),
        paper_preset={"s": 64.0, "m": 0.4, "h": 0.333, "t_alpha": 0.01}, phase_axis="m",
        adaptive=True,
    ),
    LossSpec(
        "magface", "MagFace", "Meng et al., CVPR 2021",
        branch="arcface", scale="s", head="magface",
        params=("s", "l_a", "u_a", "l_m", "u_m", "lambda_g", "policy"),
        by_dim=_dims(
            {"s": 16.0, "l_m": 0.1, "u_m": 0.3, "policy": "easy"},
            {"s": 16.0, "l_m": 0.2, "u_m": 0.5, "policy": "easy"},
            {"s": 30.0, "l_a": 10.0, "u_a": 110.0, "l_m": 0.45, "u_m": 0.8, "lambda_g": 35.0,
             "policy": "easy"},
        ),
        paper_preset={"s": 64.0, "l_a": 10.0, "u_a": 110.0, "l_m": 0.45, "u_m": 0.8,
                      "lambda_g": 35.0, "policy": "easy"},
        adaptive=True,
    ),
    LossSpec(
        "elasticface-arc", "ElasticFace-Arc", "Boutros et al., CVPRW 2022",
        branch="arcface", scale="s", head="elastic", params=("s", "m2", "sigma"),
        by_dim=_dims({"s": 16.0, "m2": 0.2, "sigma": 0.025}, {"s": 16.0, "m2": 0.4},
                     {"s": 30.0, "m2": 0.5}),
        paper_preset={"s": 64.0, "m2": 0.5, "sigma": 0.05}, phase_axis="m2", angular_param="m2",
        symbols={"m2": "m"}, adaptive=True,
    ),
    LossSpec(
        "elasticface-cos", "ElasticFace-Cos", "Boutros et al., CVPRW 2022",
        branch="cosface", scale="s", head="elastic", params=("s", "m3", "sigma"),
        by_dim=_dims({"s": 16.0, "m3": 0.1, "sigma": 0.025}, {"s": 16.0, "m3": 0.25},
                     {"s": 30.0, "m3": 0.35}),
        paper_preset={"s": 64.0, "m3": 0.35, "sigma": 0.05}, phase_axis="m3",
        symbols={"m3": "m"}, adaptive=True,
    ),
    LossSpec(
        "curricularface", "CurricularFace", "Huang et al., CVPR 2020",
        branch="arcface", scale="s", head="curricular", params=("s", "m2"),
        by_dim=_dims({"s": 16.0, "m2": 0.2}, {"s": 16.0, "m2": 0.4}, {"s": 30.0, "m2": 0.5}),
        paper_preset={"s": 64.0, "m2": 0.5}, phase_axis="m2", angular_param="m2",
        symbols={"m2": "m"}, adaptive=True,
    ),
    LossSpec(
        "adacos", "AdaCos", "Zhang et al., CVPR 2019",
        branch="normface", scale="running", head="adacos", params=(), adaptive=True,
    ),
)  # fmt: skip
_SPECS += _ADAPTIVE_SPECS

REGISTRY: dict[str, LossSpec] = {spec.name: spec for spec in _SPECS}
LOSS_NAMES: tuple[str, ...] = tuple(REGISTRY)
LOSS_LABELS: dict[str, str] = {spec.name: spec.label for spec in _SPECS}
# The Compare page's and the CLI's default line-up.
DEFAULT_COMPARE: tuple[str, ...] = ("softmax", "normface", "sphereface", "cosface", "arcface",
                                    "center")  # fmt: skip
PHASE_LOSSES: tuple[str, ...] = tuple(s.name for s in _SPECS if s.phase_axis is not None)
ADAPTIVE_LOSSES: tuple[str, ...] = tuple(spec.name for spec in _ADAPTIVE_SPECS)


def loss_spec(loss: object) -> LossSpec:
    """The spec of `loss`; ValueError with the choices for anything else."""
    if not isinstance(loss, str) or loss not in REGISTRY:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSS_NAMES)}")
    return REGISTRY[loss]


def _check_registry() -> None:
    """Import-time sanity: a broken entry fails loudly here, not in a picture."""
    for spec in _SPECS:
        assert spec.branch in PSI_BRANCHES, spec.name
        assert spec.scale in SCALES, spec.name
        assert all(name in PARAMS for name in spec.used), spec.name
        for values in (*spec.by_dim.values(), spec.paper_preset):
            assert all(spec.uses(name) for name in values), spec.name


_check_registry()
