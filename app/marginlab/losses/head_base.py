"""The common part of every loss head: hyper-parameters, the centre loss, the margin at the
targets, and the tensor helpers the head kinds share (losses/head_kinds.py).

Every head computes its target logit with `margins.target_logit` through its registry entry's
branch (losses/registry.py), so the loss that trains a model and the curves and regions that
explain it are the same function (DESIGN.md §3).

Centre loss, available on every head through `center_lambda` > 0:
    L = CE + center_lambda · ½ · mean_i ‖x_i − c_{y_i}‖²
The paper writes ½ Σ_i over the mini-batch next to a summed softmax loss; its official Caffe
layer divides by the batch size, and our cross-entropy is a batch mean too, so we take the mean:
the same λ then means the same thing as in the official code whatever the batch size. The centres
are a buffer, not parameters: `after_step` applies the paper's rule (Algorithm 1)
    Δc_j = Σ_i [y_i = j] (c_j − x_i) / (1 + Σ_i [y_i = j]),   c_j ← c_j − α Δc_j.
KaiyangZhou/pytorch-center-loss, the popular port, differs: its centres are parameters trained
by SGD on the loss (no 1/(1 + n_j) factor) and its loss has no ½. Centres start at zero.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from marginlab.losses.margins import MarginSpec, target_logit
from marginlab.losses.registry import LossSpec, loss_spec
from marginlab.params import STRUCTURAL

_NORM_EPS = 1e-12


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

    @property
    def loss_spec(self) -> LossSpec:
        """This head's registry entry (what the loss is: branch, scale, parameters)."""
        return loss_spec(self.loss)

    # ----- the public contract -------------------------------------------------------------
    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, C) logits for F.cross_entropy, with the margin on each sample's target class."""
        labels = labels.long()
        logits, plain, margin = self._parts(features, labels)
        # The margin math runs on the (B,) target column only, never on the whole matrix.
        return with_margin_at_targets(logits, labels, plain, margin)

    def compute_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of `forward`, plus center_lambda · ½ · mean ‖x_i − c_{y_i}‖²."""
        labels = labels.long()
        loss = F.cross_entropy(self(features, labels), labels)
        center_lambda = self._values["center_lambda"]
        if center_lambda > 0 and self.centers is not None:
            x = promoted(features)
            gap = x - self.centers[labels].to(x.dtype)
            loss = loss + center_lambda * 0.5 * gap.pow(2).sum(dim=1).mean()
        return loss

    @torch.no_grad()
    def after_step(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Call after optimizer.step() with the batch just used: updates the centres."""
        if self.centers is not None:
            self._update_centers(features.detach(), labels.long())

    def running_statistics(self) -> dict[str, float]:
        """The running state a head updates in its training forward (AdaFace's μ and σ,
        CurricularFace's t, AdaCos's s) as plain numbers (reads the device); most have none."""
        return {}

    def seed_draws(self, seed: int) -> None:
        """Seed the random numbers a head draws itself (ElasticFace's margins); most draw none."""

    def leads(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C): how far class i's with-margin logit beats its strongest rival's logit when i
        is the target; class i owns a feature with margin where its lead is positive (the
        regions and bands the figures draw). Every logit shares one positive scale per row."""
        return self.margin_logits(features) - max_other(self.plain_logits(features))

    def region_keywords(self) -> dict[str, Any]:
        """The keywords of geometry.region_labels that draw this head's regions."""
        return {name: value for name, value in asdict(self.spec).items() if name != "loss"}

    def cosines(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C) cos θ_j between each feature and each class weight (0 for a zero feature)."""
        return F.linear(unit_rows(features), unit_rows(self.weight))

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
        for name in STRUCTURAL:
            if name in params and name in self._values and params[name] != self._values[name]:
                raise ValueError(f"{name} is fixed when the head is built; build a new head")
        self._set_values({**self._values, **self.loss_spec.head_values(params)})

    def params(self) -> dict[str, Any]:
        """Current hyper-parameters, JSON-serialisable: build_head(loss, d, C, **params())."""
        return dict(self._values)

    @property
    def spec(self) -> MarginSpec:
        """The margin target_logit gets now: the registry's branch (center → softmax,
        subcenter-arcface → arcface) with this head's values, unused ones neutral."""
        return MarginSpec(**self._margin_kwargs())

    @property
    def scale(self) -> float | None:
        """s, or None where the logit scale is the feature norm (or there is none)."""
        return self._values["s"] if self.loss_spec.scale == "s" else None

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
        spec = MarginSpec(**self.loss_spec.margin_kwargs(values))  # validates the combination
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


# ----- tensor helpers (shared with head_kinds) -------------------------------------------------
def promoted(x: torch.Tensor) -> torch.Tensor:
    """x in float32 or better: float16/bfloat16 features (autocast) are promoted."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def max_other(z: torch.Tensor) -> torch.Tensor:
    """(B, C): for each entry, the largest value among the OTHER entries of its row."""
    top = z.topk(2, dim=1).values
    is_top = z == top[:, :1]
    # A tie at the top: the other tied entry is the rival, so the value is the top itself.
    return torch.where(is_top & (top[:, 1:2] < top[:, :1]), top[:, 1:2], top[:, :1])


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length; zero rows stay zero and get a zero gradient, never NaN.

    F.normalize would give a zero row a gradient of 1/eps = 1e12 (inf once cast to float16);
    a zero vector has no direction, so it should not be pushed anywhere through its angle.
    """
    x = promoted(x)
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    # Multiply by the (N, 1) inverse rather than divide: a division's backward makes several
    # passes over the whole (C, d) weight matrix, a product's only one.
    inverse = torch.where(norm > 0, norm.clamp_min(_NORM_EPS).reciprocal(), 0.0)
    return x * inverse


def with_margin_at_targets(
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
