"""Loss heads: nn.Modules that hold the class weights and give logits for cross-entropy.

Every head computes its target logit with `margins.target_logit` (DESIGN.md §3), so the loss
that trains a model and the curves and regions that explain it are the same function.

    head = build_head("arcface", embedding_dim=2, num_classes=10, s=16, m2=0.2)
    loss = head.compute_loss(features, labels)   # cross-entropy (+ centre loss)
    loss.backward(); optimizer.step()
    head.after_step(features, labels)            # centre update, SphereFace λ schedule

The heads (ψ is `target_logit`, x̂ and Ŵ_j are unit vectors, cos θ_j = x̂·Ŵ_j):
- softmax: z_j = W_jᵀx (+ b_j). No bias by default, as in the classifier of the official
  centre-loss MNIST toy (Wen et al., ECCV 2016); `bias=True` gives the textbook layer.
- normface (Wang et al., ACM MM 2017): z_j = s cos θ_j. s is fixed here (NormFace learns it).
- sphereface, the original A-Softmax (Liu et al., CVPR 2017): W normalised, x NOT:
  z_j = ‖x‖ cos θ_j, z_y = ‖x‖ (λ cos θ_y + ψ(θ_y)) / (1 + λ), integer m. λ follows the
  official Caffe schedule `sphereface_lambda(iteration)`, iteration counting from 1 and
  advanced by `after_step`; `lambda_schedule=False` uses the fixed `lam` instead.
- sphereface-arccos (the ArcFace paper's form, Deng et al., CVPR 2019): z_y = s cos(m1 θ_y).
- cosface (Wang et al., CVPR 2018): z_y = s (cos θ_y − m3).
- arcface (Deng et al., CVPR 2019): z_y = s cos(θ_y + m2), with the chosen policy past π − m2.
- combined (ArcFace paper, Eq. 4): z_y = s (cos(m1 θ_y + m2) − m3).
- center (Wen et al., ECCV 2016): the softmax head plus the centre loss below.
- subcenter-arcface (Deng et al., ECCV 2020): K sub-centres per class, cos θ_j = max_k cos θ_jk,
  then the ArcFace margin.

Centre loss, available on every head through `center_lambda` > 0:
    L = CE + center_lambda · ½ · mean_i ‖x_i − c_{y_i}‖²
The paper writes ½ Σ_i over the mini-batch next to a summed softmax loss; its official Caffe
layer divides by the batch size, and our cross-entropy is a batch mean too, so we take the mean:
the same λ then means the same thing as in the official code whatever the batch size. The centres
are a buffer, not parameters: `after_step` applies the paper's rule (Algorithm 1)
    Δc_j = Σ_i [y_i = j] (c_j − x_i) / (1 + Σ_i [y_i = j]),   c_j ← c_j − α Δc_j.
KaiyangZhou/pytorch-center-loss, the popular port, differs: its centres are parameters trained
by SGD on the loss (no 1/(1 + n_j) factor) and its loss has no ½. Centres start at zero.

Parameters use the names of `target_logit` (m1, m2, m3, sphere_m, lam, policy) plus s and each
head's own (bias, lambda_schedule, k, center_lambda, center_alpha). A head accepts, validates
and ignores the margin names another loss uses, so one configuration can build every head of a
comparison; `HEAD_PARAMS` says which names each loss uses, and unknown names raise ValueError.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from marginlab.losses.margins import (
    LOSSES,
    MarginSpec,
    sphereface_lambda,
    target_logit,
    validate_margin,
)

HEAD_LOSSES: tuple[str, ...] = LOSSES + ("center", "subcenter-arcface")

_CENTER_NAMES = ("center_lambda", "center_alpha")
# The hyper-parameters each head uses (besides center_lambda and center_alpha, which all take).
HEAD_PARAMS: dict[str, tuple[str, ...]] = {
    "softmax": ("bias",),
    "normface": ("s",),
    "sphereface": ("sphere_m", "lam", "lambda_schedule"),
    "sphereface-arccos": ("s", "m1", "policy"),
    "cosface": ("s", "m3"),
    "arcface": ("s", "m2", "policy"),
    "combined": ("s", "m1", "m2", "m3", "policy"),
    "center": ("bias",),
    "subcenter-arcface": ("s", "m2", "policy", "k"),
}
_KNOWN_NAMES = ("s", "m1", "m2", "m3", "sphere_m", "lam", "policy", "bias", "lambda_schedule", "k")
# Fixed when the head is built: they change the shape of its parameters.
_STRUCTURAL = ("bias", "k")

# Defaults lean to the app's 2-D/3-D toys (LOSSES.md, "Settings for a 10-class toy"); the papers
# use s = 64 with ArcFace m2 = 0.5, CosFace m3 = 0.35, combined (1, 0.3, 0.2) in 512-D.
_COMMON_DEFAULTS: dict[str, Any] = {
    "s": 16.0,
    "m1": 1.0,
    "m2": 0.0,
    "m3": 0.0,
    "sphere_m": 4,
    "lam": 5.0,  # the schedule's floor, used when lambda_schedule=False
    "policy": "fallback",
    "bias": False,
    "lambda_schedule": True,
    "k": 3,  # sub-center ArcFace's K = 3
    "center_lambda": 0.0,
    "center_alpha": 0.5,  # Wen et al. use α = 0.5
}
_LOSS_DEFAULTS: dict[str, dict[str, Any]] = {
    "sphereface-arccos": {"m1": 1.35},  # ArcFace paper, Table 2
    "cosface": {"m3": 0.1},
    "arcface": {"m2": 0.2},
    "combined": {"m1": 1.0, "m2": 0.1, "m3": 0.05},
    "center": {"center_lambda": 0.01},  # the official MNIST toy
    "subcenter-arcface": {"m2": 0.2},
}
# Which branch of target_logit each head's target class goes through.
_MARGIN_LOSS = {"center": "softmax", "subcenter-arcface": "arcface"}
_NORM_EPS = 1e-12
# Sub-centre dominance is an exponential moving count of nearest-sub-centre assignments.
_DOMINANCE_DECAY = 0.99


def head_defaults(loss: str) -> dict[str, Any]:
    """The default hyper-parameters of `loss`'s head (the names it uses, plus the centre ones)."""
    _check_loss(loss)
    merged = {**_COMMON_DEFAULTS, **_LOSS_DEFAULTS.get(loss, {})}
    return {name: merged[name] for name in HEAD_PARAMS[loss] + _CENTER_NAMES}


def build_head(loss: str, embedding_dim: int, num_classes: int, **params: Any) -> MarginHead:
    """The head of `loss` for `num_classes` classes of `embedding_dim`-dimensional features."""
    _check_loss(loss)
    embedding_dim = _count("embedding_dim", embedding_dim, low=1)
    num_classes = _count("num_classes", num_classes, low=2)
    values = {**head_defaults(loss), **_normalised(loss, params)}
    return _HEAD_CLASSES[loss](loss, embedding_dim, num_classes, values)


class MarginHead(nn.Module):
    """The common part of every head: hyper-parameters, centre loss, the margin at the targets."""

    loss: str
    centers: torch.Tensor | None

    def __init__(self, loss: str, embedding_dim: int, num_classes: int, values: dict) -> None:
        super().__init__()
        self.loss = loss
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes
        self._build_parameters(values)
        self.register_buffer("centers", None)
        self._set_values(values)

    # ----- the public contract -------------------------------------------------------------
    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, C) logits for F.cross_entropy, with the margin on each sample's target class."""
        labels = labels.long()
        logits, plain, margin = self._parts(features, labels)
        # The margin math runs on the (B,) target column only, never on the whole matrix.
        return _with_margin_at_targets(logits, labels, plain, margin)

    def compute_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of `forward`, plus center_lambda · ½ · mean ‖x_i − c_{y_i}‖²."""
        labels = labels.long()
        loss = F.cross_entropy(self(features, labels), labels)
        center_lambda = self._values["center_lambda"]
        if center_lambda > 0 and self.centers is not None:
            x = _work(features)
            gap = x - self.centers[labels].to(x.dtype)
            loss = loss + center_lambda * 0.5 * gap.pow(2).sum(dim=1).mean()
        return loss

    @torch.no_grad()
    def after_step(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Call after optimizer.step() with the batch just used: updates the centres."""
        if self.centers is not None:
            self._update_centers(features.detach(), labels.long())

    def cosines(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C) cos θ_j between each feature and each class weight (0 for a zero feature)."""
        return F.linear(_unit_rows(features), _unit_rows(self.weight))

    def plain_logits(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C) logits without any margin: what the head predicts with."""
        raise NotImplementedError

    def margin_logits(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C): for every class j, the logit j would get as the target (margin applied)."""
        raise NotImplementedError

    def class_weights(self) -> torch.Tensor:
        """(C, d) raw (unnormalised) class weight vectors, detached."""
        return self.weight.detach()

    def subcenter_weights(self) -> torch.Tensor:
        """(C, K, d) sub-centre weights; K = 1 for every head but sub-center ArcFace."""
        return self.class_weights().unsqueeze(1)

    def set_params(self, **params: Any) -> None:
        """Change hyper-parameters between steps; validated, and used from the next forward."""
        for name in _STRUCTURAL:
            if name in params and name in self._values and params[name] != self._values[name]:
                raise ValueError(f"{name} is fixed when the head is built; build a new head")
        self._set_values({**self._values, **_normalised(self.loss, params)})

    def params(self) -> dict[str, Any]:
        """Current hyper-parameters, JSON-serialisable: build_head(loss, d, C, **params())."""
        return dict(self._values)

    @property
    def spec(self) -> MarginSpec:
        """The margin target_logit gets now (center → softmax, subcenter-arcface → arcface)."""
        return MarginSpec(**self._margin_kwargs())

    @property
    def scale(self) -> float | None:
        """s, or None where the logit scale is the feature norm (or there is none)."""
        return self._values["s"] if "s" in HEAD_PARAMS[self.loss] else None

    # ----- for the subclasses -----------------------------------------------------------------
    def _build_parameters(self, values: dict) -> None:
        """Create `weight` (and whatever else the head learns)."""
        raise NotImplementedError

    def _parts(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The plain (B, C) logits, free to modify in place (nothing saved them for backward),
        and the (B,) own-class logit without and with the margin.

        The own-class logits come from the gathered rows in float32 or better, even under
        autocast (a row dot is not an autocast op).
        """
        raise NotImplementedError

    def _margin(self, cos: torch.Tensor) -> torch.Tensor:
        """ψ of the current spec: the one margin function of the project."""
        return target_logit(cos, **self._margin_kwargs())

    def _margin_kwargs(self) -> dict[str, Any]:
        return self._kwargs

    def _set_values(self, values: dict) -> None:
        spec = _margin_spec(self.loss, values)  # validates the combination
        self._values = values
        self._kwargs = asdict(spec)  # cached: asdict costs more than the margin itself
        if self.centers is None and values["center_lambda"] > 0:
            # Centres exist from the moment centre loss is first switched on, then keep tracking.
            self.centers = self.weight.new_zeros(self.num_classes, self.embedding_dim)

    def _update_centers(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Wen et al. (ECCV 2016), Algorithm 1: c_j ← c_j − α Σ_i[y_i=j](c_j − x_i)/(1 + n_j)."""
        centers = self.centers
        assert centers is not None
        x = features.to(centers.dtype)
        pull = torch.zeros_like(centers).index_add_(0, labels, centers[labels] - x)
        # index_add_ rather than bincount: bincount on CUDA synchronises with the host.
        ones = torch.ones_like(labels, dtype=centers.dtype)
        counts = centers.new_zeros(self.num_classes).index_add_(0, labels, ones)
        centers.sub_(self._values["center_alpha"] * pull / (1.0 + counts).unsqueeze(1))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # A saved head with centres loads into a fresh one whose centre loss is still off.
        if self.centers is None and prefix + "centers" in state_dict:
            self.centers = self.weight.new_zeros(self.num_classes, self.embedding_dim)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        values = ", ".join(f"{name}={value!r}" for name, value in self._values.items())
        return f"loss={self.loss!r}, d={self.embedding_dim}, C={self.num_classes}, {values}"


class SoftmaxHead(MarginHead):
    """Plain softmax: z = Wx (+ b); also the classifier of the centre-loss head."""

    def _build_parameters(self, values: dict) -> None:
        self.weight = nn.Parameter(torch.empty(self.num_classes, self.embedding_dim))
        # nn.Linear's initialisation of the weight; the bias starts at zero.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(self.num_classes)) if values["bias"] else None

    def plain_logits(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(features, self.weight, self.bias)

    def margin_logits(self, features: torch.Tensor) -> torch.Tensor:
        return self._margin(self.plain_logits(features))

    def _parts(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = _work(features)
        raw = (x * self.weight[labels].to(x.dtype)).sum(dim=1)
        if self.bias is not None:
            raw = raw + self.bias[labels].to(x.dtype)
        # ψ is the identity for softmax: the raw logit passes through the one margin function.
        return self.plain_logits(features), raw, self._margin(raw)


class CosineMarginHead(MarginHead):
    """z_j = s cos θ_j, z_y = s ψ(cos θ_y).

    NormFace, arccos SphereFace, CosFace, ArcFace and the combined margin.
    """

    def _build_parameters(self, values: dict) -> None:
        # Gaussian rows point uniformly over the sphere; only their directions matter here.
        self.weight = nn.Parameter(torch.randn(self.num_classes, self.embedding_dim))

    def plain_logits(self, features: torch.Tensor) -> torch.Tensor:
        # s folded into the (B, d) features: one pass over the (B, C) matrix fewer.
        unit_weight = _unit_rows(self.weight)
        return self._cosine_matrix(_unit_rows(features) * self._values["s"], unit_weight)

    def cosines(self, features: torch.Tensor) -> torch.Tensor:
        return self._cosine_matrix(_unit_rows(features), _unit_rows(self.weight))

    def margin_logits(self, features: torch.Tensor) -> torch.Tensor:
        return self._values["s"] * self._margin(self.cosines(features))

    def _cosine_matrix(
        self, unit_features: torch.Tensor, unit_weight: torch.Tensor
    ) -> torch.Tensor:
        return F.linear(unit_features, unit_weight)

    def _own_cosines(
        self, unit_features: torch.Tensor, unit_weight: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        return (unit_features * unit_weight[labels]).sum(dim=1)

    def _parts(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = self._values["s"]
        unit_features, unit_weight = _unit_rows(features), _unit_rows(self.weight)
        logits = self._cosine_matrix(unit_features * s, unit_weight)
        cos_y = self._own_cosines(unit_features, unit_weight, labels)
        return logits, s * cos_y, s * self._margin(cos_y)


class SphereFaceHead(MarginHead):
    """Original A-Softmax (Liu et al., CVPR 2017): the logit scale is ‖x‖, λ is annealed."""

    def _build_parameters(self, values: dict) -> None:
        self.weight = nn.Parameter(torch.randn(self.num_classes, self.embedding_dim))
        self.iteration = 1  # the official schedule counts from 1

    @property
    def current_lambda(self) -> float:
        """λ used by the next forward: the schedule's value, or the fixed `lam`."""
        if self._values["lambda_schedule"]:
            return sphereface_lambda(self.iteration)
        return self._values["lam"]

    def _margin_kwargs(self) -> dict[str, Any]:
        return {**self._kwargs, "lam": self.current_lambda}

    def plain_logits(self, features: torch.Tensor) -> torch.Tensor:
        # W normalised, x not: Ŵ_jᵀx = ‖x‖ cos θ_j.
        return F.linear(_work(features), _unit_rows(self.weight))

    def margin_logits(self, features: torch.Tensor) -> torch.Tensor:
        norms = torch.linalg.vector_norm(_work(features), dim=1, keepdim=True)
        return norms * self._margin(self.cosines(features))

    def _parts(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = _work(features)
        unit_weight = _unit_rows(self.weight)
        cos_y = (_unit_rows(x) * unit_weight[labels]).sum(dim=1)
        norm = torch.linalg.vector_norm(x, dim=1)
        return F.linear(x, unit_weight), norm * cos_y, norm * self._margin(cos_y)

    @torch.no_grad()
    def after_step(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        super().after_step(features, labels)
        self.iteration += 1

    def get_extra_state(self) -> dict[str, int]:
        return {"iteration": self.iteration}

    def set_extra_state(self, state: Mapping[str, int]) -> None:
        self.iteration = int(state["iteration"])


class SubCenterArcFaceHead(CosineMarginHead):
    """Sub-center ArcFace (Deng et al., ECCV 2020): cos θ_j = max over K sub-centres, then ArcFace.

    `class_weights()` returns each class's dominant sub-centre: the one that has most often been
    nearest to the class's own training features (an exponential moving count, decay 0.99,
    updated by `after_step`; sub-centre 0 before any step). The paper keeps the dominant
    sub-centre per class after training; `subcenter_weights()` gives all of them.
    """

    def _build_parameters(self, values: dict) -> None:
        shape = (self.num_classes, values["k"], self.embedding_dim)
        self.weight = nn.Parameter(torch.randn(shape))
        self.register_buffer("subcenter_counts", torch.zeros(self.num_classes, values["k"]))

    def class_weights(self) -> torch.Tensor:
        dominant = self.subcenter_counts.argmax(dim=1)
        rows = torch.arange(self.num_classes, device=dominant.device)
        return self.weight.detach()[rows, dominant]

    def subcenter_weights(self) -> torch.Tensor:
        return self.weight.detach()

    def _cosine_matrix(
        self, unit_features: torch.Tensor, unit_weight: torch.Tensor
    ) -> torch.Tensor:
        per_subcenter = F.linear(unit_features, unit_weight.flatten(0, 1))  # (B, C·K)
        # amax saves its output for backward: return a copy that forward may modify in place.
        return per_subcenter.unflatten(1, (self.num_classes, -1)).amax(dim=2).clone()

    def _own_cosines(
        self, unit_features: torch.Tensor, unit_weight: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        return self._own_subcenter_cosines(unit_features, unit_weight, labels).amax(dim=1)

    @staticmethod
    def _own_subcenter_cosines(
        unit_features: torch.Tensor, unit_weight: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """(B, K) cosines between each feature and its own class's sub-centres."""
        # A broadcast product, not einsum: einsum would become an fp16 bmm under autocast.
        return (unit_weight[labels] * unit_features.unsqueeze(1)).sum(dim=2)

    @torch.no_grad()
    def after_step(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        super().after_step(features, labels)
        labels = labels.long()
        cosines = self._own_subcenter_cosines(_unit_rows(features), _unit_rows(self.weight), labels)
        nearest = cosines.argmax(dim=1)
        counts = self.subcenter_counts
        counts.mul_(_DOMINANCE_DECAY)
        ones = torch.ones_like(nearest, dtype=counts.dtype)
        counts.view(-1).index_add_(0, labels * counts.shape[1] + nearest, ones)


_HEAD_CLASSES: dict[str, type[MarginHead]] = {
    "softmax": SoftmaxHead,
    "center": SoftmaxHead,
    "normface": CosineMarginHead,
    "sphereface-arccos": CosineMarginHead,
    "cosface": CosineMarginHead,
    "arcface": CosineMarginHead,
    "combined": CosineMarginHead,
    "sphereface": SphereFaceHead,
    "subcenter-arcface": SubCenterArcFaceHead,
}


# ----- tensor helpers ----------------------------------------------------------------------
def _work(x: torch.Tensor) -> torch.Tensor:
    """x in float32 or better: float16/bfloat16 features (autocast) are promoted."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length; zero rows stay zero and get a zero gradient, never NaN.

    F.normalize would give a zero row a gradient of 1/eps = 1e12 (inf once cast to float16);
    a zero vector has no direction, so it should not be pushed anywhere through its angle.
    """
    x = _work(x)
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    # Multiply by the (N, 1) inverse rather than divide: a division's backward makes several
    # passes over the whole (C, d) weight matrix, a product's only one.
    inverse = torch.where(norm > 0, norm.clamp_min(_NORM_EPS).reciprocal(), 0.0)
    return x * inverse


def _with_margin_at_targets(
    logits: torch.Tensor, labels: torch.Tensor, plain: torch.Tensor, margin: torch.Tensor
) -> torch.Tensor:
    """`logits` (B, C) with entry (i, labels[i]) turned from plain[i] into margin[i].

    Adds margin − plain in place: `plain` is the same function of the inputs as that entry, so
    the chain rule leaves exactly ψ's gradient there, and unlike a scatter nothing copies the
    (B, C) matrix or its gradient. A half-precision matrix (autocast) is copied to float32
    anyway; that copy takes the float32 margin logit itself, free of the matrix's rounding.
    """
    dtype = torch.promote_types(torch.promote_types(logits.dtype, margin.dtype), torch.float32)
    rows = torch.arange(labels.shape[0], device=labels.device)
    if logits.dtype == dtype:
        return logits.index_put_((rows, labels), (margin - plain).to(dtype), accumulate=True)
    return logits.to(dtype).index_put_((rows, labels), margin.to(dtype))


# ----- validation ----------------------------------------------------------------------------
def _check_loss(loss: object) -> None:
    if not isinstance(loss, str) or loss not in HEAD_LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(HEAD_LOSSES)}")


def _count(name: str, value: object, *, low: int) -> int:
    whole = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value == int(value)
    )
    if not whole:
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value!r}")
    return int(value)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool | str | bytes):  # float("1.5") would pass: be as strict as margins
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _normalised(loss: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validated, JSON-friendly values of the names `loss` uses; other known names are checked
    and dropped, unknown names raise."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name in ("m1", "m2", "m3", "lam"):
            clean: Any = _number(name, value)
        elif name == "s":
            clean = _number(name, value)
            if clean <= 0:
                raise ValueError(f"s (the logit scale) must be positive, got {value!r}")
        elif name == "center_lambda":
            clean = _number(name, value)
            if clean < 0:
                raise ValueError(f"center_lambda must be non-negative, got {value!r}")
        elif name == "center_alpha":
            clean = _number(name, value)
            if not 0 <= clean <= 1:
                raise ValueError(f"center_alpha must lie in [0, 1], got {value!r}")
        elif name in ("sphere_m", "k"):
            clean = _count(name, value, low=1)
        elif name in ("bias", "lambda_schedule"):
            clean = _flag(name, value)
        elif name == "policy":
            clean = value
        else:
            known = ", ".join(sorted(_KNOWN_NAMES + _CENTER_NAMES))
            raise ValueError(f"unknown parameter {name!r} for loss {loss!r}; known: {known}")
        out[name] = clean
    # Margin names another loss uses are validated too, then ignored.
    margin_names = ("m1", "m2", "m3", "sphere_m", "lam", "policy")
    merged = {**_COMMON_DEFAULTS, **out}
    validate_margin(loss="combined", **{name: merged[name] for name in margin_names})
    used = HEAD_PARAMS[loss] + _CENTER_NAMES
    return {name: value for name, value in out.items() if name in used}


def _margin_spec(loss: str, values: Mapping[str, Any]) -> MarginSpec:
    """The MarginSpec of head `loss` from its values (MarginSpec validates itself)."""
    names = ("m1", "m2", "m3", "sphere_m", "lam", "policy")
    fields = {name: values[name] for name in names if name in values}
    return MarginSpec(loss=_MARGIN_LOSS.get(loss, loss), **fields)
