"""Each loss's formula in LaTeX, in general and with the current numbers substituted.

Text only: the numbers of the curves and pictures come from margins.target_logit, never from
here. The formulas are those of LOSSES.md; each loss's name and paper are its registry entry's
(losses/registry.py), the formula follows its ψ branch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from marginlab.losses.adaptive_formulas import adaptive_formula
from marginlab.losses.formula_text import CROSS_ENTROPY as _CE
from marginlab.losses.formula_text import Formula
from marginlab.losses.formula_text import number as _g
from marginlab.losses.margins import fallback_offset, fallback_threshold
from marginlab.losses.registry import loss_spec


def _angular_note(m1: float, m2: float, policy: str, m3: float = 0.0) -> str:
    theta_star = fallback_threshold(m1, m2)
    if theta_star >= math.pi:
        return ""
    past = f"Past θ = {math.degrees(theta_star):.1f}° the angle m1·θ + m2 exceeds π. "
    if policy == "fallback":
        # insightface's released code has the th/mm fallback for ArcFace only (margins.py).
        origin = (
            "as in ArcFace's released code (insightface)"
            if m1 == 1.0 and m3 == 0.0
            else "ArcFace's released code has it for ArcFace only; generalised here"
        )
        return past + (
            f"Policy 'fallback' ({origin}): there the target logit is "
            f"s·(cos θ − {_g(fallback_offset(m1, m2) + m3)}), so it keeps decreasing."
        )
    if policy == "easy":
        return past + "Policy 'easy margin': the margin applies only where cos θ > 0."
    return past + "Policy 'none': the raw formula, which rises again there."


def cosface_band_width(m3: float, gap: float) -> float:
    """Angular width (radians) of CosFace's margin band on the circle between two weights `gap`
    radians apart: a direction φ from their bisector has cos θ1 − cos θ2 = 2 sin(gap/2) sin φ,
    so neither class wins by m3 where |φ| < asin(m3 / (2 sin(gap/2))). π when the band covers
    the whole arc (m3 ≥ 2 sin(gap/2))."""
    ratio = m3 / (2.0 * math.sin(gap / 2.0)) if gap > 0 else math.inf
    return 2.0 * math.asin(ratio) if ratio < 1.0 else math.pi


def _cosface_note(m3: float) -> str:
    example = cosface_band_width(m3, math.radians(36.0))
    return (
        "A margin in cosine, not in angle: on the circle the band between two weights Δ apart "
        "is centred on their bisector and 2·asin(m / (2 sin(Δ/2))) wide, so closer weights get "
        f"a wider band (ten weights 36° apart: {math.degrees(example):.1f}° at m = {_g(m3)}). "
        "Only in the (θ1, θ2) plane of the ArcFace paper's Fig. 5 is it widest near the "
        "class weights."
    )


def loss_formula(
    loss: str, params: Mapping[str, Any], state: Mapping[str, float] | None = None
) -> Formula:
    """The formula of `loss` with `params` (s, m1, m2, m3, sphere_m, lam, policy, ...) and,
    for the post-2020 family, its running `state` (a snapshot's; None: the starting values)."""
    try:
        spec = loss_spec(loss)
    except ValueError:
        raise ValueError(f"no formula for loss {loss!r}") from None
    if spec.adaptive:
        return adaptive_formula(loss, {**spec.defaults(2), **params}, state)
    branch, name, paper = spec.branch, spec.label, spec.paper
    s = float(params.get("s", 16.0))
    m1 = float(params.get("m1", 1.0))
    m2 = float(params.get("m2", 0.0))
    m3 = float(params.get("m3", 0.0))
    policy = str(params.get("policy", "fallback"))
    others = rf"z_j = {_g(s)}\,\cos\theta_j"
    if branch == "softmax":
        general = _CE + r",\quad z_j = W_j^\top x + b_j"
        note = "Plain softmax: logits are inner products, so feature length counts."
        if loss == "center":
            lam = float(params.get("center_lambda", 0.01))
            alpha = float(params.get("center_alpha", 0.5))
            general += r" \;+\; \frac{\lambda}{2}\,\lVert x - c_y \rVert^2"
            substituted = rf"\lambda = {_g(lam)},\quad c_y \leftarrow c_y - {_g(alpha)}\,\Delta c_y"
            note = (
                "Center loss (Wen et al., ECCV 2016): softmax plus a pull towards the class "
                "centre c_y; centres follow their class with step α."
            )
            return Formula(name, paper, general, substituted, note)
        return Formula(name, paper, general, r"z_y = W_y^\top x + b_y", note)
    if branch == "normface":
        return Formula(
            name,
            paper,
            _CE + r",\quad z_j = s \cos\theta_j",
            rf"z_y = {_g(s)}\,\cos\theta_y,\quad {others}",
            "Features and weights normalised: only angles count; s sets the temperature.",
        )
    if branch == "sphereface":
        m = int(params.get("sphere_m", 4))
        lam = float(params.get("lam", 5.0))
        schedule = bool(params.get("lambda_schedule", True))
        return Formula(
            name,
            paper,
            _CE + r",\quad z_y = \lVert x\rVert \frac{\lambda\cos\theta_y + \psi(\theta_y)}"
            r"{1+\lambda},\ \psi(\theta) = (-1)^k\cos(m\theta) - 2k,"
            r"\ k = \lfloor m\theta/\pi\rfloor",
            rf"m = {m},\quad \lambda = {_g(lam)}"
            + (r"\ (\text{annealed: } \max(5,\ 1000(1+0.12\,t)^{-1}))" if schedule else ""),
            "The original form: weights normalised, the feature length ‖x‖ kept as the scale.",
        )
    if branch == "sphereface-arccos":
        return Formula(
            name,
            paper,
            _CE + r",\quad z_y = s\cos(m_1\theta_y)",
            rf"z_y = {_g(s)}\,\cos({_g(m1)}\,\theta_y),\quad {others}",
            _angular_note(m1, 0.0, policy),
        )
    if branch == "cosface":
        return Formula(
            name,
            paper,
            _CE + r",\quad z_y = s(\cos\theta_y - m_3)",
            rf"z_y = {_g(s)}\,(\cos\theta_y - {_g(m3)}),\quad {others}",
            _cosface_note(m3),
        )
    if branch == "arcface":
        general = _CE + r",\quad z_y = s\cos(\theta_y + m_2)"
        if spec.head == "subcenter":
            general += r",\ \cos\theta_j = \max_k \cos\theta_{j,k}"
        return Formula(
            name,
            paper,
            general,
            rf"z_y = {_g(s)}\,\cos(\theta_y + {_g(m2)}),\quad {others}",
            f"An angular margin of {_g(m2)} rad = {math.degrees(m2):.1f}°. "
            + _angular_note(1.0, m2, policy),
        )
    if branch == "combined":
        return Formula(
            name,
            paper,
            _CE + r",\quad z_y = s(\cos(m_1\theta_y + m_2) - m_3)",
            rf"z_y = {_g(s)}\,(\cos({_g(m1)}\,\theta_y + {_g(m2)}) - {_g(m3)}),\quad {others}",
            _angular_note(m1, m2, policy, m3),
        )
    raise ValueError(f"no formula for loss {loss!r}")
