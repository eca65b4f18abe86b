"""What the five post-2020 heads share: their hyper-parameters (names are a contract, issue 15),
validation with one-line messages, and `AdaptiveHead`, the MarginHead they all extend.

The heads keep the MarginHead contract (losses/heads.py): `forward(features, labels)` gives the
logits first, `compute_loss` is cross-entropy (+ centre loss, + MagFace's regulariser),
`after_step` updates the centres, `plain_logits` predicts, `margin_logits` gives every class's
logit as if it were the target. What is new is the running state: AdaFace's norm statistics,
CurricularFace's t, AdaCos's s. It lives in buffers, so it is saved and loaded with a run
(`state_dict`), put back by the training guard after a non-finite step, and moved with `.to()`.
It is updated in training-mode forward, before it is used (as in the official code); in eval
mode the forward reads it without changing it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from marginlab.losses.head_base import MarginHead
from marginlab.losses.head_base import unit_rows as _unit_rows
from marginlab.losses.head_base import with_margin_at_targets as _with_margin_at_targets
from marginlab.losses.registry import loss_spec
from marginlab.params import as_number as _number

# The hyper-parameters each loss uses (plus center_lambda and center_alpha, as every head).
ADAPTIVE_PARAMS: dict[str, tuple[str, ...]] = {
    "adaface": ("s", "m", "h", "t_alpha"),
    "magface": ("s", "l_a", "u_a", "l_m", "u_m", "lambda_g", "policy"),
    "elasticface-arc": ("s", "m2", "sigma"),
    "elasticface-cos": ("s", "m3", "sigma"),
    "curricularface": ("s", "m2"),
    "adacos": (),
}
ADAPTIVE_LOSSES: tuple[str, ...] = tuple(ADAPTIVE_PARAMS)
ADAPTIVE_NAMES: tuple[str, ...] = ("m", "h", "t_alpha", "l_a", "u_a", "l_m", "u_m", "lambda_g")
ADAPTIVE_NAMES += ("sigma",)
_CENTER_NAMES = ("center_lambda", "center_alpha")

# The official settings (512-D, s = 64), each from the loss's own training configuration.
PAPER_PRESETS: dict[str, dict[str, Any]] = {
    "adaface": {"s": 64.0, "m": 0.4, "h": 0.333, "t_alpha": 0.01},
    "magface": {
        "s": 64.0,
        "l_a": 10.0,
        "u_a": 110.0,
        "l_m": 0.45,
        "u_m": 0.8,
        "lambda_g": 35.0,
        "policy": "easy",
    },
    "elasticface-arc": {"s": 64.0, "m2": 0.5, "sigma": 0.05},
    "elasticface-cos": {"s": 64.0, "m3": 0.35, "sigma": 0.05},
    "curricularface": {"s": 64.0, "m2": 0.5},
    "adacos": {},
}
# Defaults for the 2-D/3-D toys of this app (see the loss registry for how they were measured).
ADAPTIVE_DEFAULTS: dict[str, dict[str, Any]] = {
    "adaface": {"s": 16.0, "m": 0.2, "h": 0.333, "t_alpha": 0.01},
    "magface": {
        "s": 16.0,
        "l_a": 1.0,
        "u_a": 10.0,
        "l_m": 0.1,
        "u_m": 0.3,
        "lambda_g": 1.0,
        "policy": "easy",
    },
    "elasticface-arc": {"s": 16.0, "m2": 0.2, "sigma": 0.05},
    "elasticface-cos": {"s": 16.0, "m3": 0.1, "sigma": 0.025},
    "curricularface": {"s": 16.0, "m2": 0.2},
    "adacos": {},
}
_CENTER_DEFAULTS = {"center_lambda": 0.0, "center_alpha": 0.5}


def adaptive_defaults(loss: str) -> dict[str, Any]:
    """The toy defaults of `loss` (the names it uses, plus the centre ones)."""
    check_adaptive_loss(loss)
    return {**ADAPTIVE_DEFAULTS[loss], **_CENTER_DEFAULTS}


def check_adaptive_loss(loss: object) -> None:
    if not isinstance(loss, str) or loss not in ADAPTIVE_PARAMS:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(ADAPTIVE_LOSSES)}")


def _in_range(name: str, value: object, low: float, high: float, *, open_low: bool) -> float:
    number = _number(name, value)
    if number < low or (open_low and number == low) or number > high:
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must lie in {bracket}{low:g}, {high:g}], got {value!r}")
    return number


# name: (low, high, low excluded). Wide enough for every slider and the paper presets; the
# formulas stay finite over all of it (tests/test_losses_post2020.py).
_RANGES: dict[str, tuple[float, float, bool]] = {
    "m": (0.0, math.pi / 2, False),
    "h": (0.0, 10.0, True),
    "t_alpha": (0.0, 1.0, False),
    "l_a": (0.0, 1e4, True),
    "u_a": (0.0, 1e4, True),
    "l_m": (0.0, math.pi / 2, False),
    "u_m": (0.0, math.pi / 2, False),
    "lambda_g": (0.0, 1e4, False),
    "sigma": (0.0, 1.0, False),
}


def validate_adaptive(loss: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validated values of the names `loss` uses. Names other losses use (old family or new)
    are validated too, then dropped, so one configuration can build every head; unknown names
    raise ValueError."""
    check_adaptive_loss(loss)
    mine = {name: value for name, value in params.items() if name in ADAPTIVE_NAMES}
    out: dict[str, Any] = {}
    for name, value in mine.items():
        low, high, open_low = _RANGES[name]
        out[name] = _in_range(name, value, low, high, open_low=open_low)
    # The older family's names (s, m2, m3, policy, the centre ones, ...) through the heads'
    # own checks, which validate every known name and keep the combined margin's.
    rest = {name: value for name, value in params.items() if name not in ADAPTIVE_NAMES}
    out.update(loss_spec("combined").head_values(rest))
    used = ADAPTIVE_PARAMS[loss] + _CENTER_NAMES
    return {name: value for name, value in out.items() if name in used}


def _check_combination(loss: str, values: Mapping[str, Any]) -> None:
    if loss == "magface":
        l_a, u_a, l_m, u_m = (values[name] for name in ("l_a", "u_a", "l_m", "u_m"))
        if u_a <= l_a:
            raise ValueError(f"u_a must exceed l_a, got l_a={l_a}, u_a={u_a}")
        if u_m < l_m:
            raise ValueError(f"u_m must be at least l_m, got l_m={l_m}, u_m={u_m}")


def max_other(z: torch.Tensor) -> torch.Tensor:
    """(B, C): for each entry, the largest value among the OTHER entries of its row."""
    top = z.topk(2, dim=1).values
    is_top = z == top[:, :1]
    # A tie at the top: the other tied entry is the rival, so the value is the top itself.
    return torch.where(is_top & (top[:, 1:2] < top[:, :1]), top[:, 1:2], top[:, :1])


class AdaptiveHead(MarginHead):
    """z_j = s·c_j, z_y = s·ψ(c_y, q) with q a per-sample quantity of the loss (a norm scaler,
    a margin drawn or computed per sample). Subclasses give `_quantity` and `_psi`."""

    def _build_parameters(self, values: dict) -> None:
        # As CosineMarginHead: Gaussian rows point uniformly over the sphere.
        self.weight = nn.Parameter(torch.randn(self.num_classes, self.embedding_dim))

    # ----- the per-loss part ------------------------------------------------------------------
    def _quantity(self, features: torch.Tensor, *, draw: bool) -> Any:
        """(B,) the per-sample quantity ψ needs, from the current state (never updates it).
        `draw` is True only in a training-mode forward (ElasticFace draws its margins then)."""
        raise NotImplementedError

    def _psi(self, cos: torch.Tensor, quantity: Any) -> torch.Tensor:
        """The unscaled target logit of cos for the (broadcast) quantity."""
        raise NotImplementedError

    def _update_state(self, features: torch.Tensor, cos_y: torch.Tensor) -> None:
        """Training-mode forward: update the running state from this batch, before use."""

    def running_statistics(self) -> dict[str, float]:
        """The running state as plain numbers (reads the device): empty where there is none."""
        return {}

    @torch.no_grad()
    def load_running_statistics(self, state: Mapping[str, float]) -> None:
        """Put a `running_statistics()` dict back (a snapshot's, to redraw its geometry)."""
        for name, value in state.items():
            buffer = getattr(self, name, None)
            if not isinstance(buffer, torch.Tensor):
                raise ValueError(f"{self.loss} keeps no running statistic {name!r}")
            buffer.fill_(float(value))

    def leads(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C) how far class i's with-margin logit beats its strongest rival's logit when i
        is the target (unscaled: every logit of these heads carries the same scale). Class i
        owns a feature with margin where its lead is positive; the decision regions and bands
        of the figures are read from here, at the feature's own norm."""
        cos = self.cosines(features)
        quantity = self._quantity(features, draw=False)
        if isinstance(quantity, torch.Tensor) and quantity.dim() == 1:
            quantity = quantity[:, None]
        return self._psi(cos, quantity) - max_other(
            cos.to(torch.promote_types(cos.dtype, torch.float32))
        )

    # ----- the MarginHead contract ------------------------------------------------------------
    def plain_logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.cosines(features) * self._scale_value()

    def margin_logits(self, features: torch.Tensor) -> torch.Tensor:
        cos = self.cosines(features)
        quantity = self._quantity(features, draw=False)
        if isinstance(quantity, torch.Tensor) and quantity.dim() == 1:
            quantity = quantity[:, None]
        return self._scale_value() * self._psi(cos, quantity)

    def _parts(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        unit_features, unit_weight = _unit_rows(features), _unit_rows(self.weight)
        cos_y = (unit_features * unit_weight[labels]).sum(dim=1)
        if self.training:
            self._update_state(features, cos_y)
        s = self._scale_value()
        logits = F.linear(unit_features * s, unit_weight)
        margin = s * self._psi(cos_y, self._quantity(features, draw=self.training))
        return logits, s * cos_y, margin

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.long()
        logits, plain, margin = self._parts(features, labels)
        return _with_margin_at_targets(logits, labels, plain, margin)

    def _scale_value(self) -> Any:
        return self._values["s"]

    @property
    def scale(self) -> float | None:
        return float(self._values["s"])

    @property
    def spec(self):  # type: ignore[override]
        raise AttributeError(
            f"{self.loss} has no fixed MarginSpec: its margin depends on the sample or the state"
        )

    def set_params(self, **params: Any) -> None:
        self._set_values({**self._values, **validate_adaptive(self.loss, params)})

    def _set_values(self, values: dict) -> None:
        _check_combination(self.loss, values)
        self._values = values
        if self.centers is None and values["center_lambda"] > 0:
            self.centers = self.weight.new_zeros(self.num_classes, self.embedding_dim)
