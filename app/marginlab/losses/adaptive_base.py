"""What the five post-2020 heads share: `AdaptiveHead`, the MarginHead they all extend. What each
loss is (its parameters, toy defaults, paper preset) is its registry entry (losses/registry.py,
`adaptive=True`); its parameters are checked against the one table (params.py).

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

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from marginlab.losses.head_base import MarginHead, max_other
from marginlab.losses.head_base import unit_rows as _unit_rows
from marginlab.losses.head_base import with_margin_at_targets as _with_margin_at_targets


def _check_combination(loss: str, values: Mapping[str, Any]) -> None:
    if loss == "magface":
        # m(a) divides by u_a − l_a. (u_m < l_m is allowed: a margin that falls with the
        # magnitude is the opposite of MagFace's idea, and a lab may show that too.)
        l_a, u_a = values["l_a"], values["u_a"]
        if u_a <= l_a:
            raise ValueError(f"u_a must exceed l_a, got l_a={l_a}, u_a={u_a}")


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

    def region_keywords(self) -> dict[str, Any]:
        """geometry.region_labels builds this head again from these (values and state)."""
        return {"adaptive": {**self._values, **self.running_statistics()}}

    @property
    def spec(self):  # type: ignore[override]
        raise AttributeError(
            f"{self.loss} has no fixed MarginSpec: its margin depends on the sample or the state"
        )

    def _set_values(self, values: dict) -> None:
        _check_combination(self.loss, values)
        self._values = values
        if self.centers is None and values["center_lambda"] > 0:
            self.centers = self.weight.new_zeros(self.num_classes, self.embedding_dim)
