"""The formulas of the post-2020 losses in LaTeX, in general and with the current numbers (and,
where the loss keeps one, its running state) substituted. Text only: every number a curve or
picture shows comes from adaptive_margins.py."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from marginlab.losses.adaptive_curves import STATE_STARTS
from marginlab.losses.adaptive_margins import adacos_initial_scale
from marginlab.losses.formula_text import CROSS_ENTROPY as _CE
from marginlab.losses.formula_text import Formula
from marginlab.losses.formula_text import number as _g


def _state(state: Mapping[str, float] | None, name: str, default: float) -> float:
    return float((state or {}).get(name, default))


_POLICY_NOTE = {
    "easy": "Policy 'easy' (MagFace's default): the margin applies only where cos θ_y > 0.",
    "fallback": "Policy 'fallback': past θ_y = π − m(a) the target is cos θ_y − m(a)·sin m(a).",
    "none": "Policy 'none': the raw cos(θ_y + m(a)) everywhere, which rises again past π − m(a).",
}


def _adaface(p: Mapping[str, Any], state: Mapping[str, float] | None) -> Formula:
    s, m, h, alpha = (float(p[k]) for k in ("s", "m", "h", "t_alpha"))
    mean = _state(state, "batch_mean", STATE_STARTS["batch_mean"])
    std = _state(state, "batch_std", STATE_STARTS["batch_std"])
    general = (
        _CE + r",\quad z_y = s\,\big(\cos(\theta_y - m\hat z) - (m + m\hat z)\big),"
        r"\ \hat z = \mathrm{clip}\!\Big(h\,\frac{\lVert x\rVert - \mu}{\sigma + 0.001}, -1, 1\Big)"
    )
    substituted = (
        rf"z_y = {_g(s)}\,\big(\cos(\theta_y - {_g(m)}\hat z) - ({_g(m)} + {_g(m)}\hat z)\big),"
        rf"\ \hat z = \mathrm{{clip}}\big({_g(h)}\,(\lVert x\rVert - {_g(mean)})/{_g(std + 0.001)},"
        r" -1, 1\big)"
    )
    note = (
        f"μ and σ are running statistics of the batch norms (μ ← {_g(alpha)}·mean + "
        f"{_g(1 - alpha)}·μ each training step). A low norm (ẑ = −1) gives ArcFace's angular "
        "margin, the mean norm (ẑ = 0) CosFace's, a high norm (ẑ = +1) moves the angle the "
        "other way and subtracts 2m. The angle is clipped to [0.001, π − 0.001]."
    )
    return Formula("AdaFace", "Kim et al., CVPR 2022", general, substituted, note)


def _magface(p: Mapping[str, Any]) -> Formula:
    s, l_a, u_a, l_m, u_m, lam = (
        float(p[k]) for k in ("s", "l_a", "u_a", "l_m", "u_m", "lambda_g")
    )
    slope = (u_m - l_m) / (u_a - l_a)
    general = (
        _CE + r" + \lambda_g\Big(\frac{a}{u_a^2} + \frac{1}{a}\Big),\quad "
        r"z_y = s\cos(\theta_y + m(a)),\ m(a) = \frac{u_m - l_m}{u_a - l_a}(a - l_a) + l_m,"
        r"\ a = \mathrm{clamp}(\lVert x\rVert, l_a, u_a)"
    )
    substituted = (
        rf"z_y = {_g(s)}\cos(\theta_y + m(a)),\ m(a) = {_g(slope)}\,(a - {_g(l_a)}) + {_g(l_m)},"
        rf"\ a \in [{_g(l_a)}, {_g(u_a)}],\ \lambda_g = {_g(lam)}"
    )
    note = (
        f"The margin grows from {_g(l_m)} rad at a = {_g(l_a)} to {_g(u_m)} rad at "
        f"a = {_g(u_a)}; the regulariser rewards a large magnitude, so only a sample the loss "
        "can fit at a large margin affords a long feature. " + _POLICY_NOTE[str(p["policy"])]
    )
    return Formula("MagFace", "Meng et al., CVPR 2021", general, substituted, note)


def _elastic(loss: str, p: Mapping[str, Any]) -> Formula:
    s, sigma = float(p["s"]), float(p["sigma"])
    draw = r",\ \tilde m \sim \mathcal N"
    if loss == "elasticface-arc":
        m = float(p["m2"])
        target, name, parent = (
            r"\cos(\theta_y + \tilde m)",
            "ElasticFace-Arc",
            "ArcFace (policy 'none')",
        )
    else:
        m = float(p["m3"])
        target, name, parent = r"(\cos\theta_y - \tilde m)", "ElasticFace-Cos", "CosFace"
    general = _CE + r",\quad z_y = s" + target + draw + r"(m, \sigma)"
    substituted = rf"z_y = {_g(s)}" + target + draw + rf"({_g(m)}, {_g(sigma)})"
    note = (
        "Every training sample draws its own margin from the run's random generator; "
        f"evaluation uses the mean m. With σ = 0 this is exactly {parent}."
    )
    return Formula(name, "Boutros et al., CVPRW 2022", general, substituted, note)


def _curricular(p: Mapping[str, Any], state: Mapping[str, float] | None) -> Formula:
    s, m = float(p["s"]), float(p["m2"])
    t = _state(state, "t", 0.0)
    general = (
        _CE + r",\quad z_y = s\cos(\theta_y + m),\ "
        r"z_j = \begin{cases} s\cos\theta_j\,(t + \cos\theta_j) & \cos\theta_j > \cos(\theta_y + m)"
        r"\\ s\cos\theta_j & \text{otherwise}\end{cases}"
    )
    substituted = (
        rf"z_y = {_g(s)}\cos(\theta_y + {_g(m)}),\ z_j^{{\text{{hard}}}} = {_g(s)}\cos\theta_j"
        rf"\,({_g(t)} + \cos\theta_j),\ t \leftarrow 0.01\,\overline{{\cos\theta_y}} + 0.99\,t"
    )
    note = (
        f"t = {t:.3f} now (it starts at 0): early, hard negatives weigh less than plain "
        "cosines (easy samples first); as t grows they weigh more. The target uses ArcFace's "
        f"fallback past θ_y = {math.degrees(math.pi - m):.1f}°."
    )
    return Formula("CurricularFace", "Huang et al., CVPR 2020", general, substituted, note)


def _adacos(state: Mapping[str, float] | None, num_classes: int) -> Formula:
    start = adacos_initial_scale(num_classes)
    s = _state(state, "running_s", start)
    general = (
        _CE + r",\quad z_j = \tilde s\cos\theta_j,\ \tilde s \leftarrow "
        r"\frac{\ln B_{\mathrm{avg}}}{\cos\min(\pi/4, \theta_{\mathrm{med}})},\ "
        r"B_{\mathrm{avg}} = \frac1B \sum_i \sum_{j \ne y_i} e^{\tilde s \cos\theta_{ij}}"
    )
    substituted = rf"\tilde s = {_g(s)}\ (\text{{starts at }} \sqrt2\,\ln(C - 1) = {_g(start)})"
    note = (
        "No margin: the scale follows each training batch. The rule assumes the negatives "
        "sit near 90° (high dimensions); in 2-D and 3-D their cosines stay large and s grows "
        "to the lab's ceiling."
    )
    return Formula("AdaCos", "Zhang et al., CVPR 2019", general, substituted, note)


def adaptive_formula(
    loss: str,
    params: Mapping[str, Any],
    state: Mapping[str, float] | None = None,
    num_classes: int = 10,
) -> Formula:
    """The formula of one of the post-2020 losses with `params` and the running `state`."""
    if loss == "adaface":
        return _adaface(params, state)
    if loss == "magface":
        return _magface(params)
    if loss in ("elasticface-arc", "elasticface-cos"):
        return _elastic(loss, params)
    if loss == "curricularface":
        return _curricular(params, state)
    if loss == "adacos":
        return _adacos(state, num_classes)
    raise ValueError(f"no formula for loss {loss!r}")
