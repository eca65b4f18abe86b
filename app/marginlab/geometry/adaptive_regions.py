"""Regions and bands of the post-2020 family, read from the head itself (DESIGN.md §3).

Their margins depend on the feature norm (AdaFace, MagFace), a running state (AdaFace's μ and
σ, CurricularFace's t) or a draw (ElasticFace: drawn at its mean), so a figure rebuilds the head
from the snapshot's weights, hyper-parameters and state and asks `head.leads`: class i owns a
feature with margin where its lead is positive, exactly as the head's own eval forward says
(tests/test_losses_post2020.py). Nothing here repeats a formula.

A direction u is taken at the norm `norm` (u scaled to that length) or, with `norm=None`, at
its own length: unit directions on the circle or sphere sit at ‖x‖ = 1, and the raw feature
plane's grid points at their own radius, so there the bands change with ‖x‖.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from marginlab.geometry.angles import normalize_rows
from marginlab.losses.heads import build_head
from marginlab.params import HEAD_PARAMS


def adaptive_leads(
    directions: np.ndarray,
    weights: np.ndarray,
    *,
    loss: str,
    values: Mapping[str, Any],
    norm: float | None = None,
) -> np.ndarray:
    """(N, C) leads of each class at each point; `values` are the head's hyper-parameters and
    running state (head.region_keywords()["adaptive"], or a snapshot's params and state)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 3:  # (C, 1, d): these heads keep one weight per class
        w = w[:, 0]
    points = np.asarray(directions, dtype=np.float64)
    if norm is not None:
        points = normalize_rows(points) * float(norm)
    params = {name: value for name, value in values.items() if name in HEAD_PARAMS}
    state = {name: value for name, value in values.items() if name not in HEAD_PARAMS}
    with torch.random.fork_rng(devices=[]):  # building a head draws weights: leave the RNG be
        head = build_head(loss, w.shape[1], w.shape[0], **params).double().eval()
    known = head.running_statistics()
    head.load_running_statistics({name: state[name] for name in known if name in state})
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(w))
        return head.leads(torch.tensor(points)).numpy()
