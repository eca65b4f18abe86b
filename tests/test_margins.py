"""The margin family's one function, target_logit, against the papers' numbers and its promises.

Pins: the ArcFace paper's Fig. 4b table (all seven curves), the fallback / easy / none policies,
finiteness of value and gradient over the whole slider range (hypothesis), validation, the
official SphereFace λ schedule, and float32 math for half-precision inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from marginlab.losses.margins import (
    COS_EPS,
    LOSSES,
    POLICIES,
    MarginSpec,
    sphereface_lambda,
    target_logit,
    target_logit_np,
    validate_margin,
)

# ArcFace (Deng et al., CVPR 2019) Fig. 4b: unscaled target logit at θ (degrees); LOSSES.md.
FIG4B_THETAS = (20, 30, 45, 60, 90, 100)
FIG4B = {
    "softmax": (
        {"loss": "softmax"},
        (0.9397, 0.8660, 0.7071, 0.5000, 0.0000, -0.1736),
    ),
    "sphereface m=4 λ=5": (
        {"loss": "sphereface", "sphere_m": 4, "lam": 5.0},
        (0.8120, 0.6384, 0.4226, 0.1667, -0.5000, -0.6837),
    ),
    "sphereface m1=1.35": (
        {"loss": "sphereface-arccos", "m1": 1.35},
        (0.8910, 0.7604, 0.4886, 0.1564, -0.5225, -0.7071),
    ),
    "arcface m2=0.5": (
        {"loss": "arcface", "m2": 0.5},
        (0.6607, 0.5203, 0.2815, 0.0236, -0.4794, -0.6245),
    ),
    "cosface m3=0.35": (
        {"loss": "cosface", "m3": 0.35},
        (0.5897, 0.5160, 0.3571, 0.1500, -0.3500, -0.5236),
    ),
    "CM1 (1, 0.3, 0.2)": (
        {"loss": "combined", "m1": 1.0, "m2": 0.3, "m3": 0.2},
        (0.5966, 0.4796, 0.2666, 0.0217, -0.4955, -0.6569),
    ),
    "CM2 (0.9, 0.4, 0.15)": (
        {"loss": "combined", "m1": 0.9, "m2": 0.4, "m3": 0.15},
        (0.6056, 0.4939, 0.2975, 0.0763, -0.3905, -0.5394),
    ),
}


def _cos_of_degrees(degrees) -> torch.Tensor:
    return torch.cos(torch.deg2rad(torch.as_tensor(degrees, dtype=torch.float64)))


@pytest.mark.parametrize("curve", list(FIG4B))
def test_fig4b_table(curve: str) -> None:
    margin, expected = FIG4B[curve]
    got = target_logit(_cos_of_degrees(FIG4B_THETAS), **margin)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)


def test_numpy_twin_follows_the_same_code() -> None:
    cos = np.linspace(-1, 1, 101)
    for margin, _ in FIG4B.values():
        expected = target_logit(torch.as_tensor(cos), **margin).numpy()
        np.testing.assert_array_equal(target_logit_np(cos, **margin), expected)


def test_spec_calls_target_logit() -> None:
    spec = MarginSpec(loss="combined", m1=0.9, m2=0.4, m3=0.15)
    cos = _cos_of_degrees(FIG4B_THETAS)
    torch.testing.assert_close(spec.target_logit(cos), target_logit(cos, **vars(spec)))


# ----- the A-Softmax ψ against its definition ----------------------------------------------------
@pytest.mark.parametrize("m", range(1, 7))
def test_a_softmax_psi_is_the_papers_piecewise_formula(m: int) -> None:
    """ψ(θ) = (−1)^k cos(mθ) − 2k, k = ⌊mθ/π⌋ (Liu et al., CVPR 2017), with λ = 0."""
    theta = torch.linspace(0.0, math.pi, 2001, dtype=torch.float64)[1:-1]
    k = torch.floor(m * theta / math.pi)
    expected = (-1.0) ** k * torch.cos(m * theta) - 2 * k
    got = target_logit(torch.cos(theta), loss="sphereface", sphere_m=m, lam=0.0)
    torch.testing.assert_close(got, expected, atol=1e-9, rtol=0)
    assert torch.all(got.diff() <= 1e-12), "ψ is monotonically decreasing in θ"


# ----- policies ----------------------------------------------------------------------------------
THETA = torch.linspace(0.0, math.pi, 20_001, dtype=torch.float64)
ANGULAR = [
    ("arcface", {"m2": m2})
    for m2 in (0.0, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, math.pi - 1e-3, math.pi)
]
ANGULAR += [("sphereface-arccos", {"m1": m1}) for m1 in (0.5, 1.0, 1.35, 2.0, 3.0, 5.0)]
ANGULAR += [
    ("combined", {"m1": m1, "m2": m2, "m3": m3})
    for m1 in (1.0, 1.35, 5.0)
    for m2 in (0.0, 0.5, 2.0, math.pi)
    for m3 in (0.0, 0.35, 2.0)
]


@pytest.mark.parametrize(("loss", "margin"), ANGULAR)
def test_fallback_is_monotone_non_increasing(loss: str, margin: dict) -> None:
    """Over a dense θ grid from 0 to π inclusive, at every setting up to m2 = π and m1 = 5."""
    values = target_logit(torch.cos(THETA), loss=loss, policy="fallback", **margin)
    assert torch.isfinite(values).all()
    assert values.diff().max() <= 1e-12


def test_fallback_is_the_papers_th_mm_trick_in_practice() -> None:
    """ArcFace's code: cos θ − m·sin m where cos θ ≤ cos(π − m), for the usual m."""
    cos = torch.cos(THETA)
    for m in (0.2, 0.35, 0.5, 0.8):
        raw = torch.cos(THETA + m)
        expected = torch.where(cos > math.cos(math.pi - m), raw, cos - m * math.sin(m))
        got = target_logit(cos, loss="arcface", m2=m)
        inside = cos.abs() < 1 - COS_EPS  # leave the ε-clamped ends out
        torch.testing.assert_close(got[inside], expected[inside], atol=1e-9, rtol=0)


@pytest.mark.parametrize(("loss", "margin"), ANGULAR[::3])
def test_easy_margin_applies_only_where_cos_is_positive(loss: str, margin: dict) -> None:
    cos = torch.cos(THETA)
    easy = target_logit(cos, loss=loss, policy="easy", **margin)
    raw = target_logit(cos, loss=loss, policy="none", **margin)
    positive = cos > 0
    torch.testing.assert_close(easy[positive], raw[positive])
    torch.testing.assert_close(easy[~positive], cos[~positive])


@pytest.mark.parametrize(("loss", "margin"), ANGULAR)
def test_policy_none_is_the_raw_formula(loss: str, margin: dict) -> None:
    """cos(m1 θ + m2) − m3 everywhere, past θ* too (where it is not monotone)."""
    m1, m2, m3 = margin.get("m1", 1.0), margin.get("m2", 0.0), margin.get("m3", 0.0)
    theta = THETA[torch.cos(THETA).abs() < 1 - COS_EPS]  # the ε-clamp moves the two ends
    got = target_logit(torch.cos(theta), loss=loss, policy="none", **margin)
    torch.testing.assert_close(got, torch.cos(m1 * theta + m2) - m3, atol=1e-9, rtol=0)


def test_policies_differ_only_past_the_threshold() -> None:
    """ArcFace m = 0.5: all three agree for θ < 90°, fallback ≠ none past π − m."""
    theta = THETA
    cos = torch.cos(theta)
    by_policy = {p: target_logit(cos, loss="arcface", m2=0.5, policy=p) for p in POLICIES}
    early = theta < math.pi / 2 - 1e-9
    for policy in POLICIES:
        torch.testing.assert_close(by_policy[policy][early], by_policy["none"][early])
    late = theta > math.pi - 0.5 + 1e-6
    assert (by_policy["fallback"][late] < by_policy["none"][late]).all()


# ----- finite everywhere (hypothesis) ------------------------------------------------------------
cos_values = st.one_of(
    st.sampled_from([-1.0, 1.0, 0.0, -1.0 + 1e-16, 1.0 - 1e-16]),
    st.floats(-1.0, 1.0, allow_nan=False),
)
margins = st.fixed_dictionaries(
    {
        "loss": st.sampled_from(LOSSES),
        "m1": st.floats(1.0, 5.0),
        "m2": st.floats(0.0, math.pi),
        "m3": st.floats(0.0, 2.0),
        "sphere_m": st.integers(1, 6),
        "lam": st.floats(0.0, 1000.0),
        "policy": st.sampled_from(POLICIES),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    margin=margins,
    s=st.floats(0.1, 256.0),
    cos=st.lists(cos_values, min_size=1, max_size=8),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_value_and_gradient_are_finite(margin: dict, s: float, cos: list, dtype) -> None:
    c = torch.tensor(cos, dtype=dtype, requires_grad=True)
    logit = s * target_logit(c, **margin)
    (grad,) = torch.autograd.grad(logit.sum(), c)
    assert torch.isfinite(logit).all(), logit
    assert torch.isfinite(grad).all(), grad


# ----- validation --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        {"loss": "arcfcae"},
        {"loss": "center"},  # a head, not a margin: heads.build_head knows it
        {"loss": "arcface", "policy": "sometimes"},
        {"loss": "arcface", "m2": -0.1},
        {"loss": "arcface", "m2": math.pi + 0.01},
        {"loss": "arcface", "m2": float("nan")},
        {"loss": "arcface", "m2": None},
        {"loss": "combined", "m1": 0.0},
        {"loss": "combined", "m1": -1.0},
        {"loss": "combined", "m1": "1.35"},
        {"loss": "cosface", "m3": float("inf")},
        {"loss": "sphereface", "lam": -1.0},
        {"loss": "sphereface", "sphere_m": 0},
        {"loss": "sphereface", "sphere_m": 2.5},
        {"loss": "sphereface", "sphere_m": float("inf")},
        {"loss": "sphereface", "sphere_m": None},
        {"loss": "sphereface", "sphere_m": True},
    ],
)
def test_bad_parameters_raise_a_readable_value_error(bad: dict) -> None:
    with pytest.raises(ValueError) as error:
        validate_margin(**bad)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError):
        target_logit(torch.zeros(2), **bad)
    with pytest.raises(ValueError):
        MarginSpec(**bad)


def test_integral_float_sphere_m_is_accepted() -> None:
    got = target_logit(torch.tensor([0.5]), loss="sphereface", sphere_m=4.0)
    torch.testing.assert_close(got, target_logit(torch.tensor([0.5]), loss="sphereface"))


# ----- the SphereFace λ schedule -----------------------------------------------------------------
def test_sphereface_lambda_official_schedule() -> None:
    assert sphereface_lambda(1) == pytest.approx(892.857, abs=1e-3)
    assert sphereface_lambda(100) == pytest.approx(76.923, abs=1e-3)
    assert sphereface_lambda(1000) == pytest.approx(8.264, abs=1e-3)
    assert sphereface_lambda(1658) > 5.0
    assert sphereface_lambda(1659) == 5.0
    assert sphereface_lambda(100_000) == 5.0
    values = [sphereface_lambda(i) for i in range(1, 3000)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


# ----- half precision ----------------------------------------------------------------------------
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(("name", "margin"), [(k, v[0]) for k, v in FIG4B.items()])
def test_half_precision_inputs_are_computed_in_float32(half, name: str, margin: dict) -> None:
    cos = torch.linspace(-1, 1, 257).to(half)
    got = target_logit(cos, **margin)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, target_logit(cos.float(), **margin), atol=0, rtol=0)


def test_float64_stays_float64_and_autocast_is_off_inside() -> None:
    cos = torch.linspace(-1, 1, 17, dtype=torch.float64)
    assert target_logit(cos, loss="arcface", m2=0.5).dtype == torch.float64
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = target_logit(cos.float(), loss="combined", m1=1.35, m2=0.3, m3=0.2)
    assert got.dtype == torch.float32
    expected = target_logit(cos.float(), loss="combined", m1=1.35, m2=0.3, m3=0.2)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
