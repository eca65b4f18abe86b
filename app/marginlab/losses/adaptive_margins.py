"""The margins of the post-2020 family: ONE function per margin, from cosines (and, where a loss
needs them, feature norms and its running state) to the unscaled logits (DESIGN.md §3).

The heads in adaptive_heads.py / adaptive_state_heads.py, the curves and the regions all call
these functions; margins.target_logit stays the one ψ of the 2017–2019 family, and the losses
below call it wherever they reduce to it (CurricularFace's target is ArcFace's).

c_j = cos θ_j between the normalised feature and the normalised weight j, y the label. Every
function works in float32 or better (float16 inputs are promoted), broadcasts its tensor
arguments, and never branches on tensor values (no host synchronisation).

- AdaFace (Kim et al., CVPR 2022; official mk-minchul/AdaFace head.py):
    ẑ = clip(h·(‖x‖ − μ)/(σ + 0.001), −1, 1),  ‖x‖ clipped to [0.001, 100] and detached,
    ψ = cos(clip(θ_y − m·ẑ, 0.001, π − 0.001)) − (m + m·ẑ).
  ẑ = −1 (a low norm: a hard, low-quality image) is ArcFace with m; ẑ = 0 is CosFace with m;
  ẑ = +1 moves the angle the other way and subtracts 2m. The official code also clamps every
  cosine to ±(1 − 0.001) before acos; we clamp by margins.COS_EPS, as the rest of the project,
  which differs only where |c| > 0.999, and leave the other classes' c_j untouched.
- MagFace (Meng et al., CVPR 2021; official IrvingMeng/MagFace models/magface.py):
    a = clamp(‖x‖, l_a, u_a),  m(a) = (u_m − l_m)/(u_a − l_a)·(a − l_a) + l_m,
    ψ = cos(θ_y + m(a)) with a policy past θ_y = π − m(a) (the official default: easy margin),
    loss = CE + λ_g·mean(a/u_a² + 1/a). The norm is NOT detached: the margin and the regulariser
    both push on ‖x‖, which is how MagFace makes the norm a quality score.
- ElasticFace (Boutros et al., CVPRW 2022; official fdbtrs/ElasticFace utils/losses.py): each
  sample's margin is drawn from N(m, σ); ψ = cos(θ_y + margin) without a fallback (Arc) or
  c_y − margin (Cos). With σ = 0 the margin is m itself: ArcFace (policy "none") and CosFace.
- CurricularFace (Huang et al., CVPR 2020; official HuangYG123/CurricularFace head/metrics.py):
  target = ArcFace with the fallback; a negative with c_j > cos(θ_y + m) (no fallback) is "hard"
  and becomes c_j·(t + c_j), t an EMA of the batch mean of c_y, so hard negatives weigh more as
  training progresses.
- AdaCos (Zhang et al., CVPR 2019): no margin, logits s·c_j; s starts at √2·ln(C − 1) and is set
  from each batch to ln(B_avg)/cos(min(π/4, θ_med)), B_avg = the batch mean of Σ_{j≠y} e^{s·c_j}.
"""

from __future__ import annotations

import math

import torch

from marginlab.losses.margins import COS_EPS, POLICIES, target_logit

# AdaFace's constants (official head.py): norm clip for stability, eps of σ and of the angle.
ADAFACE_NORM_RANGE = (0.001, 100.0)
ADAFACE_EPS = 1e-3
ADAFACE_INITIAL_MEAN = 20.0
ADAFACE_INITIAL_STD = 100.0
# CurricularFace's EMA weight of the batch mean of c_y (official metrics.py: 0.01).
CURRICULAR_MOMENTUM = 0.01
# AdaCos's s is kept in [ADACOS_MIN_S, ADACOS_MAX_S]. The paper's rule can give s ≤ 0 when the
# negatives are far (Σ e^{s c_j} < 1) and gives s = 0 for two classes (ln 1): a head that
# cannot learn. The ceiling keeps s·c inside float16 and stops a collapsed batch (every c_j
# near 1) from multiplying s by √2 at every step. Neither bound is reached in normal training.
ADACOS_MIN_S = 1.0
ADACOS_MAX_S = 100.0


def _work(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _like(value: torch.Tensor | float, reference: torch.Tensor) -> torch.Tensor | float:
    """A tensor argument in `reference`'s dtype and device; a Python number stays a number."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype=reference.dtype, device=reference.device)
    return float(value)


def angular_margin(cos: torch.Tensor, margin: torch.Tensor | float, *, policy: str) -> torch.Tensor:
    """cos(θ + margin) for a per-sample margin (a tensor broadcastable to `cos`, or a number).

    `policy` past θ = π − margin, as in margins.target_logit: "fallback" uses c − mm with
    mm = max(m·sin m, 1 − cos m) (the paper's m·sin m, raised only where it would break
    monotony, exactly margins.fallback_offset for m1 = 1), "easy" applies the margin only where
    c > 0 (MagFace's default), "none" is the raw formula. A number margin gives the same bits
    as target_logit(loss="arcface", m2=margin) for the same policy.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    cos = _work(cos)
    if not isinstance(margin, torch.Tensor):
        return target_logit(cos, loss="arcface", m2=float(margin), policy=policy)
    m = _like(margin, cos)
    c = cos.clamp(-1.0 + COS_EPS, 1.0 - COS_EPS)
    cos_m, sin_m = torch.cos(m), torch.sin(m)
    raw = c * cos_m - torch.sqrt(1.0 - c * c) * sin_m
    if policy == "none":
        return raw
    if policy == "easy":
        return torch.where(cos > 0, raw, cos)
    offset = torch.maximum(m * sin_m, 1.0 - cos_m)
    # θ ≤ π − m  ⇔  c ≥ cos(π − m) = −cos m.
    return torch.where(c > -cos_m, raw, cos - offset)


# ----- AdaFace --------------------------------------------------------------------------------
def adaface_norms(features: torch.Tensor) -> torch.Tensor:
    """(B,) ‖x‖ clipped to [0.001, 100] and detached: AdaFace's norm never gets a gradient."""
    norms = torch.linalg.vector_norm(_work(features.detach()), dim=-1)
    return norms.clamp(*ADAFACE_NORM_RANGE)


def adaface_scaler(
    norms: torch.Tensor | float,
    *,
    batch_mean: torch.Tensor | float,
    batch_std: torch.Tensor | float,
    h: float,
) -> torch.Tensor:
    """ẑ = clip(h·(‖x‖ − μ)/(σ + 0.001), −1, 1) for already clipped norms."""
    norms = _work(torch.as_tensor(norms))
    mean, std = _like(batch_mean, norms), _like(batch_std, norms)
    return (h * (norms - mean) / (std + ADAFACE_EPS)).clamp(-1.0, 1.0)


def adaface_target(cos: torch.Tensor, scaler: torch.Tensor | float, *, m: float) -> torch.Tensor:
    """ψ = cos(clip(θ − m·ẑ, 0.001, π − 0.001)) − (m + m·ẑ); ẑ broadcast against cos."""
    cos = _work(cos)
    z = _like(scaler, cos)
    theta = torch.acos(cos.clamp(-1.0 + COS_EPS, 1.0 - COS_EPS))
    angle = (theta - m * z).clamp(ADAFACE_EPS, math.pi - ADAFACE_EPS)
    return torch.cos(angle) - (m + m * z)


def adaface_margins(scaler: torch.Tensor | float, *, m: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(angular, additive) margins at ẑ: g_angle = −m·ẑ (added to θ), g_add = m + m·ẑ."""
    z = _work(torch.as_tensor(scaler))
    return -m * z, m + m * z


def adaface_update(
    norms: torch.Tensor, batch_mean: torch.Tensor, batch_std: torch.Tensor, t_alpha: float
) -> None:
    """In place: μ ← α·mean + (1 − α)·μ, σ ← α·std + (1 − α)·σ, std unbiased (official).

    A batch of one sample has no standard deviation: σ is then left as it is (the official
    code would write NaN into it)."""
    with torch.no_grad():
        norms = norms.detach().to(batch_mean.dtype)
        batch_mean.mul_(1.0 - t_alpha).add_(t_alpha * norms.mean())
        if norms.numel() > 1:
            batch_std.mul_(1.0 - t_alpha).add_(t_alpha * norms.std())


# ----- MagFace --------------------------------------------------------------------------------
def magface_magnitudes(norms: torch.Tensor, *, l_a: float, u_a: float) -> torch.Tensor:
    """a = clamp(‖x‖, l_a, u_a); the gradient to ‖x‖ is kept inside [l_a, u_a] (official)."""
    return _work(norms).clamp(l_a, u_a)


def magface_margin(
    magnitudes: torch.Tensor | float, *, l_a: float, u_a: float, l_m: float, u_m: float
) -> torch.Tensor:
    """m(a) = (u_m − l_m)/(u_a − l_a)·(a − l_a) + l_m for magnitudes already clamped."""
    a = _work(torch.as_tensor(magnitudes))
    return (u_m - l_m) / (u_a - l_a) * (a - l_a) + l_m


def magface_regulariser(magnitudes: torch.Tensor, *, u_a: float) -> torch.Tensor:
    """g(a) = mean(a/u_a² + 1/a): pulls a up towards u_a (its minimum is at a = u_a)."""
    a = _work(magnitudes)
    return (a / u_a**2 + 1.0 / a).mean()


# ----- ElasticFace ----------------------------------------------------------------------------
def elastic_margins(
    count: int, *, mean: float, sigma: float, generator: torch.Generator | None
) -> torch.Tensor | float:
    """`count` margins drawn from N(mean, σ) with `generator` (on the generator's device).

    With σ = 0 the distribution is the point `mean`: the number itself is returned and nothing
    is drawn, so the loss is exactly ArcFace / CosFace."""
    if sigma == 0:
        return float(mean)
    device = generator.device if generator is not None else None
    noise = torch.randn(count, generator=generator, device=device, dtype=torch.float64)
    return mean + sigma * noise


def elastic_target(cos: torch.Tensor, margins: torch.Tensor | float, *, kind: str) -> torch.Tensor:
    """ElasticFace-Arc ψ = cos(θ + margin) (no fallback, as the official code), or
    ElasticFace-Cos ψ = c − margin; margins per sample (broadcast against cos) or one number."""
    if kind == "arc":
        return angular_margin(cos, margins, policy="none")
    if kind == "cos":
        cos = _work(cos)
        if not isinstance(margins, torch.Tensor):
            return target_logit(cos, loss="cosface", m3=float(margins))
        return cos - _like(margins, cos)
    raise ValueError(f"unknown ElasticFace kind {kind!r}; choose arc or cos")


# ----- CurricularFace -------------------------------------------------------------------------
def curricular_target(cos_y: torch.Tensor, *, m: float) -> torch.Tensor:
    """The target: ArcFace with the paper's fallback (margins.target_logit)."""
    return target_logit(cos_y, loss="arcface", m2=m, policy="fallback")


def curricular_negative(cos: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """A hard negative's logit c·(t + c) (before the scale)."""
    cos = _work(cos)
    return cos * (_like(t, cos) + cos)


def curricular_logits(
    cos: torch.Tensor, labels: torch.Tensor, *, m: float, t: torch.Tensor | float
) -> torch.Tensor:
    """(B, C) unscaled logits: the fallback ArcFace target at y; each negative with
    c_j > cos(θ_y + m) (computed without the fallback) becomes c_j·(t + c_j)."""
    cos = _work(cos)
    labels = labels.long()
    cos_y = cos.gather(1, labels[:, None])
    with torch.no_grad():  # which negatives are hard is a mask, not a function to differentiate
        hard = cos > target_logit(cos_y, loss="arcface", m2=m, policy="none")
    logits = torch.where(hard, curricular_negative(cos, t), cos)
    target = curricular_target(cos_y, m=m)
    is_target = torch.arange(cos.shape[1], device=cos.device)[None, :] == labels[:, None]
    return torch.where(is_target, target, logits)


def curricular_update(t: torch.Tensor, cos_y: torch.Tensor) -> None:
    """In place: t ← 0.01·mean(c_y) + 0.99·t (official metrics.py)."""
    with torch.no_grad():
        t.mul_(1.0 - CURRICULAR_MOMENTUM).add_(CURRICULAR_MOMENTUM * cos_y.detach().mean())


# ----- AdaCos ---------------------------------------------------------------------------------
def adacos_initial_scale(num_classes: int) -> float:
    """The fixed AdaCos scale √2·ln(C − 1) (Zhang et al., Eq. 13), at least ADACOS_MIN_S."""
    return max(ADACOS_MIN_S, math.sqrt(2.0) * math.log(num_classes - 1))


def adacos_scale(cos: torch.Tensor, labels: torch.Tensor, s: torch.Tensor | float) -> torch.Tensor:
    """The dynamic AdaCos scale for this batch: ln(B_avg)/cos(min(π/4, θ_med)).

    B_avg = (1/B)·Σ_i Σ_{j≠y_i} e^{s·c_ij} with the current s (its log taken as a logsumexp, so
    it cannot overflow), θ_med the median target angle; kept in [ADACOS_MIN_S, ADACOS_MAX_S]."""
    with torch.no_grad():
        cos = _work(cos.detach()).to(torch.float64)
        labels = labels.long()
        scale = _like(s, cos)
        is_target = torch.arange(cos.shape[1], device=cos.device)[None, :] == labels[:, None]
        others = torch.where(is_target, -math.inf, scale * cos)
        log_b_avg = torch.logsumexp(others.flatten(), dim=0) - math.log(cos.shape[0])
        cos_y = cos.gather(1, labels[:, None])[:, 0].clamp(-1.0 + COS_EPS, 1.0 - COS_EPS)
        theta_med = torch.acos(cos_y).median()
        new = log_b_avg / torch.cos(theta_med.clamp(max=math.pi / 4))
        return new.nan_to_num(ADACOS_MIN_S).clamp(ADACOS_MIN_S, ADACOS_MAX_S)
