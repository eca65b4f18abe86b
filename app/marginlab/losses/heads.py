"""Loss heads: nn.Modules that hold the class weights and give logits for cross-entropy.

    head = build_head("arcface", embedding_dim=2, num_classes=10, s=16, m2=0.2)
    loss = head.compute_loss(features, labels)   # cross-entropy (+ centre loss)
    loss.backward(); optimizer.step()
    head.after_step(features, labels)            # centre update, SphereFace λ schedule

What each loss is — its ψ branch, its scale, the parameters it uses and their defaults — is its
registry entry (losses/registry.py); the head classes, one per shape of weights, are in
losses/head_kinds.py and their common part in losses/head_base.py.

Parameters use the names of `target_logit` (m1, m2, m3, sphere_m, lam, policy) plus s and each
head's own (bias, lambda_schedule, k, center_lambda, center_alpha), checked against the one
parameter table (params.py). A head accepts, checks and ignores the names another loss uses, so
one configuration can build every head of a comparison (the registry's rule for unused
parameters); `HEAD_PARAMS` says which names each loss uses, and unknown names raise ValueError.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from marginlab.losses.head_base import MarginHead
from marginlab.losses.head_kinds import (
    HEAD_KINDS,
    CosineMarginHead,
    SoftmaxHead,
    SphereFaceHead,
    SubCenterArcFaceHead,
)
from marginlab.losses.registry import LOSS_NAMES, REGISTRY, loss_spec

HEAD_LOSSES: tuple[str, ...] = LOSS_NAMES
# The hyper-parameters each head uses (besides center_lambda and center_alpha, which all take).
HEAD_PARAMS: dict[str, tuple[str, ...]] = {name: spec.params for name, spec in REGISTRY.items()}

__all__ = [
    "HEAD_KINDS",
    "HEAD_LOSSES",
    "HEAD_PARAMS",
    "CosineMarginHead",
    "MarginHead",
    "SoftmaxHead",
    "SphereFaceHead",
    "SubCenterArcFaceHead",
    "build_head",
    "head_defaults",
]


def head_defaults(loss: str, dim: int = 2) -> dict[str, Any]:
    """The default hyper-parameters of `loss`'s head (the names it uses, plus the centre ones)."""
    return loss_spec(loss).defaults(dim)


def build_head(loss: str, embedding_dim: int, num_classes: int, **params: Any) -> MarginHead:
    """The head of `loss` for `num_classes` classes of `embedding_dim`-dimensional features."""
    spec = loss_spec(loss)
    embedding_dim = _count("embedding_dim", embedding_dim, low=1)
    num_classes = _count("num_classes", num_classes, low=2)
    values = {**spec.defaults(embedding_dim), **spec.head_values(params)}
    return HEAD_KINDS[spec.head](loss, embedding_dim, num_classes, values)


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
