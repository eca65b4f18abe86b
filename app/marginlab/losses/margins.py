"""The margin family: ONE function from cos θ_y to the modified (unscaled) target logit ψ.

Every picture and every loss in this project calls `target_logit` (DESIGN.md §3): the
training heads, the target-logit curves, the decision regions on the circle and sphere,
and the lesson checks. If they disagreed, the app would teach something false.

Formulas (see ../shared/reference/LOSSES.md):
- NormFace (Wang et al., ACM MM 2017):          ψ = cos θ
- SphereFace / A-Softmax (Liu et al., CVPR 2017): ψ = (λ cos θ + (−1)^k cos(mθ) − 2k) / (1 + λ),
  k = ⌊mθ/π⌋, integer m; the head scales it by ‖x‖, not by s.
- SphereFace, arccos form (ArcFace paper, Deng et al., CVPR 2019, Table 2): ψ = cos(m1 θ)
- CosFace / AM-Softmax (Wang et al., CVPR 2018): ψ = cos θ − m3
- ArcFace (Deng et al., CVPR 2019):               ψ = cos(θ + m2)
- Combined margin (ArcFace paper, Eq. 4):         ψ = cos(m1 θ + m2) − m3

Past m1·θ + m2 > π the angular forms stop decreasing in θ. The `policy` decides:
- "fallback" (default): past θ* = (π − m2)/m1 use cos θ − mm − m3, which keeps ψ decreasing.
  The released ArcFace code (insightface) has this th/mm trick for ArcFace only (m1 = 1,
  m3 = 0), with mm = m·sin m; ours generalises it to every angular form (arccos SphereFace,
  the combined margin, sub-centres). That value only
  keeps ψ non-increasing across θ* while m·sin m ≥ 1 + cos θ* (true for m ≲ 2.3 rad), so we take
  mm = max(m2·sin m2, 1 + cos θ*): identical to the paper in every practical setting, and still
  monotone at the slider's extremes and for m1 ≠ 1.
- "easy" (insightface's easy_margin): the margin applies only where cos θ > 0.
- "none": the raw formula, not monotone past θ*.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from marginlab.params import POLICIES

LOSSES: tuple[str, ...] = (
    "softmax",
    "normface",
    "sphereface",
    "sphereface-arccos",
    "cosface",
    "arcface",
    "combined",
)

# Keeps arccos and sqrt(1 − cos²) away from their infinite derivatives at ±1.
COS_EPS = 1e-7


@dataclass(frozen=True)
class MarginSpec:
    """The parameters of one margin, with the same names as `target_logit`'s keywords."""

    loss: str
    m1: float = 1.0
    m2: float = 0.0
    m3: float = 0.0
    sphere_m: int = 4
    lam: float = 0.0
    policy: str = "fallback"

    def __post_init__(self) -> None:
        """ValueError with a readable message for parameters outside the margin family."""
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose one of {', '.join(POLICIES)}")
        for name in ("m1", "m2", "m3", "lam"):
            if not _is_finite_number(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)!r}")
        if self.m1 <= 0:
            raise ValueError(f"m1 must be positive, got {self.m1}")
        if not 0 <= self.m2 <= math.pi:
            raise ValueError(f"m2 (the additive angular margin) must lie in [0, π], got {self.m2}")
        if self.lam < 0:
            raise ValueError(f"lam must be non-negative, got {self.lam}")
        m = self.sphere_m
        if not _is_finite_number(m) or int(m) != m or m < 1:
            raise ValueError(f"sphere_m must be a positive integer, got {m!r}")

    def target_logit(self, cos_theta: torch.Tensor) -> torch.Tensor:
        return target_logit(cos_theta, **asdict(self))


def validate_margin(**margin: object) -> None:
    """Raise ValueError with a readable message for parameters outside the margin family
    (`margin`: target_logit's keywords; the checks are MarginSpec's, written once there)."""
    MarginSpec(**margin)  # type: ignore[arg-type]


def _is_finite_number(value: object) -> bool:
    """True for finite reals; False (not TypeError/OverflowError) for None, strings, inf, NaN."""
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def target_logit(
    cos_theta: torch.Tensor,
    *,
    loss: str,
    m1: float = 1.0,
    m2: float = 0.0,
    m3: float = 0.0,
    sphere_m: int = 4,
    lam: float = 0.0,
    policy: str = "fallback",
) -> torch.Tensor:
    """The modified, unscaled target logit ψ(θ_y) of `loss` for the given cos θ_y.

    Works on any device; float16/bfloat16 inputs (e.g. under autocast) are computed in float32,
    float64 stays float64. Branches only on Python parameters, never on tensor values, so it
    needs no host synchronisation.
    """
    MarginSpec(loss=loss, m1=m1, m2=m2, m3=m3, sphere_m=sphere_m, lam=lam, policy=policy)
    work_dtype = torch.promote_types(cos_theta.dtype, torch.float32)
    with torch.autocast(device_type=cos_theta.device.type, enabled=False):
        cos = cos_theta.to(work_dtype)
        if loss in ("softmax", "normface"):
            return cos
        if loss == "cosface":
            return cos - m3
        if loss == "sphereface":
            return _a_softmax(cos, int(sphere_m), lam)
        if loss == "sphereface-arccos":
            return _angular(cos, m1=m1, m2=0.0, m3=0.0, policy=policy)
        if loss == "arcface":
            return _angular(cos, m1=1.0, m2=m2, m3=0.0, policy=policy)
        return _angular(cos, m1=m1, m2=m2, m3=m3, policy=policy)


def target_logit_np(cos_theta: np.ndarray | float, **margin: float | int | str) -> np.ndarray:
    """`target_logit` on numpy arrays (float64), for curves and regions; same code path."""
    cos = torch.as_tensor(np.asarray(cos_theta, dtype=np.float64))
    return target_logit(cos, **margin).numpy()


def fallback_threshold(m1: float, m2: float) -> float:
    """θ* = (π − m2)/m1, the angle past which the angular margin stops decreasing (radians)."""
    return (math.pi - m2) / m1


def fallback_offset(m1: float, m2: float) -> float:
    """mm of the fallback cos θ − mm: the paper's m·sin m, raised only where it breaks monotony."""
    theta_star = fallback_threshold(m1, m2)
    return max(m2 * math.sin(m2), 1.0 + math.cos(theta_star))


def _clamped(cos: torch.Tensor) -> torch.Tensor:
    return cos.clamp(-1.0 + COS_EPS, 1.0 - COS_EPS)


def _angular(cos: torch.Tensor, *, m1: float, m2: float, m3: float, policy: str) -> torch.Tensor:
    """cos(m1·θ + m2) − m3 with the chosen policy past θ* (see the module docstring)."""
    c = _clamped(cos)
    if m1 == 1.0:
        # cos(θ + m) = cos θ cos m − sin θ sin m: no arccos in the forward pass.
        sin = torch.sqrt(1.0 - c * c)
        raw = c * math.cos(m2) - sin * math.sin(m2)
    else:
        raw = torch.cos(m1 * torch.acos(c) + m2)
    raw = raw - m3
    if policy == "none":
        return raw
    if policy == "easy":
        return torch.where(cos > 0, raw, cos)
    theta_star = fallback_threshold(m1, m2)
    if theta_star >= math.pi:
        return raw
    linear = cos - fallback_offset(m1, m2) - m3
    return torch.where(c > math.cos(theta_star), raw, linear)


def _chebyshev(cos: torch.Tensor, m: int) -> torch.Tensor:
    """cos(mθ) as the Chebyshev polynomial T_m(cos θ): exact and smooth, as in SphereFace's code."""
    previous, current = torch.ones_like(cos), cos
    if m == 0:
        return previous
    for _ in range(m - 1):
        previous, current = current, 2 * cos * current - previous
    return current


def _a_softmax(cos: torch.Tensor, m: int, lam: float) -> torch.Tensor:
    """SphereFace's ψ(θ) = (−1)^k cos(mθ) − 2k mixed with cos θ by λ: (λ cos θ + ψ)/(1 + λ)."""
    c = _clamped(cos)
    with torch.no_grad():  # k is piecewise constant; ψ is continuous across its jumps
        k = torch.floor(m * torch.acos(c) / math.pi)
        sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
    psi = sign * _chebyshev(c, m) - 2.0 * k
    return (lam * cos + psi) / (1.0 + lam)


def sphereface_lambda(
    iteration: int,
    *,
    base: float = 1000.0,
    gamma: float = 0.12,
    power: float = 1.0,
    lambda_min: float = 5.0,
) -> float:
    """λ of the official SphereFace Caffe schedule: max(λ_min, base·(1 + γ·iter)^(−power)).

    Iterations count from 1 (λ(1) = 892.857, λ(100) = 76.923, λ reaches 5 at iteration 1659).
    """
    return max(lambda_min, base * (1.0 + gamma * iteration) ** (-power))
