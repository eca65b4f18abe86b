"""The head kinds: one nn.Module class per SHAPE of weights (a loss picks its kind in the
registry, losses/registry.py; ψ is `target_logit`, x̂ and Ŵ_j unit vectors, cos θ_j = x̂·Ŵ_j).

- "linear" (softmax, center): z_j = W_jᵀx (+ b_j). No bias by default, as in the classifier of
  the official centre-loss MNIST toy (Wen et al., ECCV 2016); `bias=True` gives the textbook layer.
- "cosine" (normface, sphereface-arccos, cosface, arcface, combined): z_j = s cos θ_j,
  z_y = s ψ(cos θ_y). NormFace's s is fixed here (NormFace learns it).
- "sphereface", the original A-Softmax (Liu et al., CVPR 2017): W normalised, x NOT:
  z_j = ‖x‖ cos θ_j, z_y = ‖x‖ (λ cos θ_y + ψ(θ_y)) / (1 + λ), integer m. λ follows the
  official Caffe schedule `sphereface_lambda(iteration)`, iteration counting from 1 and
  advanced by `after_step`; `lambda_schedule=False` uses the fixed `lam` instead.
- "subcenter" (Deng et al., ECCV 2020): K sub-centres per class, cos θ_j = max_k cos θ_jk,
  then the ArcFace margin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from marginlab.losses.adaptive_heads import ADAPTIVE_HEAD_KINDS
from marginlab.losses.head_base import MarginHead, promoted, unit_rows
from marginlab.losses.margins import sphereface_lambda

# Sub-centre dominance is an exponential moving count of nearest-sub-centre assignments.
_DOMINANCE_DECAY = 0.99


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
        x = promoted(features)
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
        unit_weight = unit_rows(self.weight)
        return self._cosine_matrix(unit_rows(features) * self._values["s"], unit_weight)

    def cosines(self, features: torch.Tensor) -> torch.Tensor:
        return self._cosine_matrix(unit_rows(features), unit_rows(self.weight))

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
        unit_features, unit_weight = unit_rows(features), unit_rows(self.weight)
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
        return F.linear(promoted(features), unit_rows(self.weight))

    def margin_logits(self, features: torch.Tensor) -> torch.Tensor:
        norms = torch.linalg.vector_norm(promoted(features), dim=1, keepdim=True)
        return norms * self._margin(self.cosines(features))

    def _parts(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = promoted(features)
        unit_weight = unit_rows(self.weight)
        cos_y = (unit_rows(x) * unit_weight[labels]).sum(dim=1)
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
        cosines = self._own_subcenter_cosines(unit_rows(features), unit_rows(self.weight), labels)
        nearest = cosines.argmax(dim=1)
        counts = self.subcenter_counts
        counts.mul_(_DOMINANCE_DECAY)
        ones = torch.ones_like(nearest, dtype=counts.dtype)
        counts.view(-1).index_add_(0, labels * counts.shape[1] + nearest, ones)


# The registry's `head` field names one of these; a new loss whose weights keep one of these
# shapes reuses its class.
HEAD_KINDS: dict[str, type[MarginHead]] = {
    "linear": SoftmaxHead,
    "cosine": CosineMarginHead,
    "sphereface": SphereFaceHead,
    "subcenter": SubCenterArcFaceHead,
    **ADAPTIVE_HEAD_KINDS,  # the post-2020 family, each with its running state or draws
}
