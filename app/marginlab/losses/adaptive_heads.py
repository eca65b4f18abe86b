"""The five post-2020 heads (issue 15). Every formula is a call into adaptive_margins.py, where
each margin is written once with its paper and official code; shared plumbing is in
adaptive_base.py.

    head = build_head("adaface", embedding_dim=2, num_classes=10, s=16, m=0.2)
    loss = head.compute_loss(features, labels)   # CE (+ MagFace's regulariser, + centre loss)
    head.running_statistics()                    # {"batch_mean": ..., "batch_std": ...}

- adaface (Kim et al., CVPR 2022, mk-minchul/AdaFace head.py): s, m, h, t_alpha; buffers
  batch_mean (starts 20) and batch_std (starts 100).
- magface (Meng et al., CVPR 2021, IrvingMeng/MagFace models/magface.py): s, l_a, u_a, l_m,
  u_m, lambda_g, policy (official default "easy").
- elasticface-arc / elasticface-cos (Boutros et al., CVPRW 2022, fdbtrs/ElasticFace
  utils/losses.py): s, m2 | m3, sigma. Margins are drawn from `generator` (the run's; a head
  without one seeds its own from `seed` on first use, on the features' device). Eval mode and
  `margin_logits` use the mean margin: evaluating never consumes the run's random numbers.
- curricularface (Huang et al., CVPR 2020, HuangYG123/CurricularFace head/metrics.py): s, m2;
  buffer t (starts 0).
- adacos (Zhang et al., CVPR 2019): no hyper-parameter of its own; buffer running_s starts at
  √2·ln(C − 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from marginlab.losses import adaptive_margins as am
from marginlab.losses.adaptive_base import AdaptiveHead
from marginlab.losses.head_base import promoted as _work


class AdaFaceHead(AdaptiveHead):
    """AdaFace: the margin follows the feature norm relative to its running mean and std."""

    batch_mean: torch.Tensor
    batch_std: torch.Tensor

    def _build_parameters(self, values: dict) -> None:
        super()._build_parameters(values)
        self.register_buffer("batch_mean", torch.tensor(am.ADAFACE_INITIAL_MEAN))
        self.register_buffer("batch_std", torch.tensor(am.ADAFACE_INITIAL_STD))

    def _update_state(self, features: torch.Tensor, cos_y: torch.Tensor) -> None:
        norms = am.adaface_norms(features)
        am.adaface_update(norms, self.batch_mean, self.batch_std, self._values["t_alpha"])

    def norm_scaler(self, norms: torch.Tensor) -> torch.Tensor:
        """ẑ of norms (clipped like the features' own) under the current statistics."""
        clipped = _work(torch.as_tensor(norms)).clamp(*am.ADAFACE_NORM_RANGE)
        mean, std = self.batch_mean, self.batch_std
        return am.adaface_scaler(clipped, batch_mean=mean, batch_std=std, h=self._values["h"])

    def _quantity(self, features: torch.Tensor, *, draw: bool) -> torch.Tensor:
        return self.norm_scaler(am.adaface_norms(features))

    def _psi(self, cos: torch.Tensor, quantity: Any) -> torch.Tensor:
        return am.adaface_target(cos, quantity, m=self._values["m"])

    def running_statistics(self) -> dict[str, float]:
        return {"batch_mean": float(self.batch_mean), "batch_std": float(self.batch_std)}


class MagFaceHead(AdaptiveHead):
    """MagFace: an angular margin that grows with the (clamped) feature magnitude a, and a
    regulariser that rewards a large a; the gradient reaches ‖x‖ through both."""

    def magnitudes(self, features: torch.Tensor) -> torch.Tensor:
        norms = torch.linalg.vector_norm(_work(features), dim=-1)
        return am.magface_magnitudes(norms, l_a=self._values["l_a"], u_a=self._values["u_a"])

    def margin_of(self, magnitudes: torch.Tensor | float) -> torch.Tensor:
        """m(a) for magnitudes already clamped to [l_a, u_a]."""
        v = self._values
        return am.magface_margin(magnitudes, l_a=v["l_a"], u_a=v["u_a"], l_m=v["l_m"], u_m=v["u_m"])

    def _quantity(self, features: torch.Tensor, *, draw: bool) -> torch.Tensor:
        return self.margin_of(self.magnitudes(features))

    def _psi(self, cos: torch.Tensor, quantity: Any) -> torch.Tensor:
        return am.angular_margin(cos, quantity, policy=self._values["policy"])

    def compute_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """CE (+ centre loss) + lambda_g·mean(a/u_a² + 1/a) (official MagLoss)."""
        loss = super().compute_loss(features, labels)
        lambda_g = self._values["lambda_g"]
        if lambda_g == 0:
            return loss
        regulariser = am.magface_regulariser(self.magnitudes(features), u_a=self._values["u_a"])
        return loss + lambda_g * regulariser


class ElasticFaceHead(AdaptiveHead):
    """ElasticFace-Arc (m2) or -Cos (m3): each training sample's margin ~ N(m, σ)."""

    generator: torch.Generator | None = None
    seed: int = 0

    def seed_draws(self, seed: int) -> None:
        """The run's seed: a generator of its own (made on the features' device at the first
        draw), so the margins never touch the batch order a comparison shares."""
        self.seed, self.generator, self._pending_state = int(seed), None, None

    def _build_parameters(self, values: dict) -> None:
        super()._build_parameters(values)
        self.kind = "arc" if self.loss == "elasticface-arc" else "cos"
        self._pending_state: tuple[str, torch.Tensor] | None = None

    @property
    def mean_margin(self) -> float:
        return self._values["m2" if self.kind == "arc" else "m3"]

    def _quantity(self, features: torch.Tensor, *, draw: bool) -> Any:
        if not draw:
            return self.mean_margin
        generator = self._generator_for(features.device)
        sigma = self._values["sigma"]
        count = features.shape[0]
        margins = am.elastic_margins(count, mean=self.mean_margin, sigma=sigma, generator=generator)
        if isinstance(margins, torch.Tensor):
            return margins.to(features.device)
        return margins

    def _psi(self, cos: torch.Tensor, quantity: Any) -> torch.Tensor:
        return am.elastic_target(cos, quantity, kind=self.kind)

    def _generator_for(self, device: torch.device) -> torch.Generator:
        if self.generator is None:
            self.generator = torch.Generator(device=device).manual_seed(self.seed)
        if self._pending_state is not None and self._pending_state[0] == self.generator.device.type:
            self.generator.set_state(self._pending_state[1])
        self._pending_state = None
        return self.generator

    def get_extra_state(self) -> dict[str, Any]:
        if self.generator is None:
            return {"seed": self.seed, "generator": None, "device": None}
        state = self.generator.get_state()
        return {"seed": self.seed, "generator": state, "device": self.generator.device.type}

    def set_extra_state(self, state: Mapping[str, Any]) -> None:
        """The generator resumes where it was saved (on a device of the same type)."""
        self.seed = int(state["seed"])
        if state["generator"] is None:
            self._pending_state = None
            return
        self._pending_state = (str(state["device"]), state["generator"])
        if self.generator is not None:
            self._generator_for(self.generator.device)


class CurricularFaceHead(AdaptiveHead):
    """CurricularFace: ArcFace target; hard negatives c_j·(t + c_j), t an EMA of mean c_y."""

    t: torch.Tensor

    def _build_parameters(self, values: dict) -> None:
        super()._build_parameters(values)
        self.register_buffer("t", torch.tensor(0.0))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.long()
        cos = self.cosines(features)
        if self.training:
            am.curricular_update(self.t, cos.gather(1, labels[:, None]))
        unscaled = am.curricular_logits(cos, labels, m=self._values["m2"], t=self.t)
        return self._values["s"] * unscaled

    def _quantity(self, features: torch.Tensor, *, draw: bool) -> None:
        return None

    def _psi(self, cos: torch.Tensor, quantity: Any) -> torch.Tensor:
        return am.curricular_target(cos, m=self._values["m2"])

    def running_statistics(self) -> dict[str, float]:
        return {"t": float(self.t)}

    def leads(self, features: torch.Tensor) -> torch.Tensor:
        """As for every head, but the rivals are the logits CurricularFace gives them when i is
        the target: a rival j with c_j > cos(θ_i + m) is hard and counts as c_j·(t + c_j)
        (the decision boundary of Huang et al., Table 1)."""
        cos = _work(self.cosines(features))
        m, count = self._values["m2"], cos.shape[1]
        raw = am.angular_margin(cos, m, policy="none")  # (B, C): cos(θ_i + m) for each target i
        hard = cos[:, None, :] > raw[:, :, None]  # [b, i, j]: rival j is hard when i is target
        rivals = torch.where(hard, am.curricular_negative(cos, self.t)[:, None, :], cos[:, None, :])
        own = torch.eye(count, dtype=torch.bool, device=cos.device)
        strongest = rivals.masked_fill(own, -torch.inf).amax(dim=2)
        return am.curricular_target(cos, m=m) - strongest


class AdaCosHead(AdaptiveHead):
    """AdaCos: no margin; the scale s adapts to the batch (Zhang et al., dynamic AdaCos)."""

    running_s: torch.Tensor

    def _build_parameters(self, values: dict) -> None:
        super()._build_parameters(values)
        initial = am.adacos_initial_scale(self.num_classes)
        self.register_buffer("running_s", torch.tensor(initial))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosines(features)
        if self.training:
            self.running_s.copy_(am.adacos_scale(cos, labels, self.running_s))
        return cos * self.running_s

    def _quantity(self, features: torch.Tensor, *, draw: bool) -> None:
        return None

    def _psi(self, cos: torch.Tensor, quantity: Any) -> torch.Tensor:
        return _work(cos)

    def _scale_value(self) -> torch.Tensor:
        return self.running_s

    @property
    def scale(self) -> float:
        return float(self.running_s)

    def running_statistics(self) -> dict[str, float]:
        return {"running_s": float(self.running_s)}


# The registry's `head` field names one of these (losses/head_kinds.HEAD_KINDS adds them).
ADAPTIVE_HEAD_KINDS: dict[str, type[AdaptiveHead]] = {
    "adaface": AdaFaceHead,
    "magface": MagFaceHead,
    "elastic": ElasticFaceHead,
    "curricular": CurricularFaceHead,
    "adacos": AdaCosHead,
}
