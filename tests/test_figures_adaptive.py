"""The figures of the margins that adapt draw what the formulas say: MagFace's m(a) is flat
below l_a and above u_a and linear between, AdaFace's margins at the running mean norm are
(0, m), CurricularFace's negative curve is c·(t + c) for the head's t, ElasticFace's halo sits
at m ± σ; every builder validates as plotly and holds no NaN, even for bad norms."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from marginlab.figures.adaptive import (
    adaptive_target_figure,
    norm_margin_figure,
    running_state_figure,
)
from marginlab.figures.curves import THETA_DEG
from marginlab.losses.registry import ADAPTIVE_LOSSES, loss_spec


def _defaults(loss: str) -> dict:
    return loss_spec(loss).defaults(2)


def _shifted(theta: np.ndarray, m: float) -> np.ndarray:
    """cos(θ + m) with the project's clamp of cos θ to ±(1 − 1e-7) before sqrt(1 − c²)."""
    c = np.clip(np.cos(theta), -1 + 1e-7, 1 - 1e-7)
    return c * math.cos(m) - np.sqrt(1 - c * c) * math.sin(m)


def _line(fig: go.Figure, starts: str) -> tuple[np.ndarray, np.ndarray]:
    for item in fig.data:
        if item.type == "scatter" and item.name.startswith(starts):
            return np.asarray(item.x, dtype=np.float64), np.asarray(item.y, dtype=np.float64)
    raise AssertionError(f"no line named {starts!r}: {[d.name for d in fig.data]}")


def test_magface_margin_is_flat_outside_its_magnitudes_and_linear_inside() -> None:
    params = {**_defaults("magface"), "l_a": 2.0, "u_a": 12.0, "l_m": 0.1, "u_m": 0.6}
    fig = norm_margin_figure("magface", params, norms=np.array([1.0, 5.0, 9.0]))
    x, y = _line(fig, "m(a)")
    assert x.max() == pytest.approx(15.0, rel=1e-6)  # 1.25 · u_a: the flat end is visible
    np.testing.assert_allclose(y[x <= 2.0], 0.1, atol=1e-6)
    np.testing.assert_allclose(y[x >= 12.0], 0.6, atol=1e-6)
    inside = (x > 2.0) & (x < 12.0)
    np.testing.assert_allclose(y[inside], 0.1 + 0.05 * (x[inside] - 2.0), atol=1e-5)


def test_adaface_margins_at_the_running_mean_norm_are_zero_and_m() -> None:
    params = {**_defaults("adaface"), "m": 0.3, "h": 0.5}
    state = {"batch_mean": 4.0, "batch_std": 1.0}
    fig = norm_margin_figure("adaface", params, norms=np.linspace(1, 8, 50), state=state)
    x, angle = _line(fig, "g_angle")
    _, additive = _line(fig, "g_add")
    at_mean = np.argmin(np.abs(x - 4.0))
    z = 0.5 * (x[at_mean] - 4.0) / 1.001
    assert angle[at_mean] == pytest.approx(-0.3 * z, abs=1e-6)
    assert additive[at_mean] == pytest.approx(0.3 + 0.3 * z, abs=1e-6)
    # ẑ saturates at ±1 past μ ± σ/h (2 and 6 here): the angular margin spans [−m, m].
    assert angle.min() == pytest.approx(-0.3, abs=1e-6) and angle.max() == pytest.approx(
        0.3, abs=1e-6
    )


def test_curricular_negative_curve_uses_the_heads_t() -> None:
    params = _defaults("curricularface")
    fig = adaptive_target_figure("curricularface", params, state={"t": 0.37})
    x, y = _line(fig, "hard negative")
    np.testing.assert_array_equal(x, THETA_DEG.astype(np.float32))
    c = np.cos(np.radians(x))
    np.testing.assert_allclose(y, c * (0.37 + c), atol=1e-6)
    _, target = _line(fig, "target")
    theta = np.radians(THETA_DEG)
    m = params["m2"]
    expected = np.where(theta <= math.pi - m, _shifted(theta, m), np.cos(theta) - m * math.sin(m))
    np.testing.assert_allclose(target, expected, atol=1e-5)


def test_elasticface_halo_sits_at_the_mean_plus_and_minus_sigma() -> None:
    params = {**_defaults("elasticface-arc"), "m2": 0.3, "sigma": 0.1}
    fig = adaptive_target_figure("elasticface-arc", params)
    _, low = _line(fig, "m − σ")
    _, high = _line(fig, "m + σ")
    _, mean = _line(fig, "mean margin")
    theta = np.radians(THETA_DEG)  # no fallback: ElasticFace's official code has none
    np.testing.assert_allclose(low, _shifted(theta, 0.2), atol=1e-6)
    np.testing.assert_allclose(high, _shifted(theta, 0.4), atol=1e-6)
    np.testing.assert_allclose(mean, _shifted(theta, 0.3), atol=1e-6)


@pytest.mark.parametrize("loss", ADAPTIVE_LOSSES)
@pytest.mark.parametrize("preset", ["toy", "paper"])
def test_every_builder_is_valid_plotly_without_nan(loss: str, preset: str) -> None:
    params = {**_defaults(loss), **(loss_spec(loss).paper_preset if preset == "paper" else {})}
    norms = np.array([np.nan, np.inf, 0.0, 1e-9, 3.0, 250.0])
    state = {"batch_mean": 3.0, "batch_std": 0.0, "t": 1.0, "running_s": 7.0}
    steps = np.arange(4.0)
    series = {
        "t": np.array([0.0, np.nan, 0.5, 0.6]),
        "running_s": np.array([3.1, 4.0, np.inf, 5.0]),
    }
    figures = (
        norm_margin_figure(loss, params, norms=norms, state=state),
        norm_margin_figure(loss, params),
        adaptive_target_figure(loss, params, theta_y=np.array([0.1, 2.0]), state=state),
        running_state_figure(loss, steps, series),
    )
    for fig in figures:
        go.Figure(fig.to_dict())  # validates every property the fast builder skipped
        for item in fig.data:
            for axis in ("x", "y"):
                values = getattr(item, axis, None)
                if values is not None:
                    assert np.isfinite(np.asarray(values, dtype=np.float64)).all(), item.name


def test_running_state_drops_non_finite_points() -> None:
    fig = running_state_figure(
        "adacos", np.arange(4.0), {"running_s": np.array([3, np.nan, 4, 5.0])}
    )
    x, y = _line(fig, "AdaCos s")
    np.testing.assert_array_equal(x, [0, 2, 3])
    np.testing.assert_array_equal(y, [3, 4, 5])


def test_elasticface_circle_shows_the_band_one_sigma_wider_around_the_mean_band() -> None:
    """On the circle, the pale halo is the band at m + σ: it covers the mean band and more."""
    from marginlab.figures.views import BAND_NAME, HALO_NAME, circle_figure
    from marginlab.geometry.regions import BAND, circle_directions, region_labels

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 2)), rng.integers(0, 6, 60)
    angles = np.arange(6) * np.pi / 3
    w = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    values = {"m2": 0.2, "sigma": 0.1}
    fig = circle_figure(x, y, w, loss="elasticface-arc", s=20.0, m2=0.2, adaptive=values)
    names = [t.name for t in fig.data]
    assert HALO_NAME in names and names.index(HALO_NAME) < names.index(BAND_NAME)
    u = circle_directions(36_000)
    mean = region_labels(u, w, loss="elasticface-arc", s=20.0, adaptive=values) == BAND
    wide = region_labels(u, w, loss="elasticface-arc", s=20.0, adaptive={**values, "m2": 0.3})
    assert (wide == BAND)[mean].all() and (wide == BAND).sum() > mean.sum()
    still = circle_figure(x, y, w, loss="elasticface-arc", s=20.0, adaptive={**values, "sigma": 0})
    assert HALO_NAME not in [t.name for t in still.data]


@pytest.mark.parametrize("loss", ["magface", "adaface"])
def test_norm_dependent_bands_change_with_the_radius_in_the_raw_plane(loss: str) -> None:
    """A point is judged at its own ‖x‖: MagFace's band widens with the norm (m(a) grows);
    AdaFace's changes too (its margin turns from angular to cosine as ẑ rises). A ring at
    radius r equals the circle drawn at norm = r."""
    from marginlab.geometry.regions import BAND, circle_directions, region_labels

    angles = np.arange(6) * np.pi / 3
    w = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    values = {
        "magface": {"l_a": 1.0, "u_a": 6.0, "l_m": 0.05, "u_m": 0.5, "policy": "easy"},
        "adaface": {"m": 0.4, "h": 1.0, "batch_mean": 3.5, "batch_std": 1.0},
    }[loss]
    ring = circle_directions(3600)
    near, far = (region_labels(ring * r, w, loss=loss, s=16.0, adaptive=values) for r in (1, 6))
    assert (near == BAND).mean() != (far == BAND).mean()
    if loss == "magface":
        assert (far == BAND).mean() > (near == BAND).mean()
    at_norm = region_labels(ring, w, loss=loss, s=16.0, adaptive=values, norm=6.0)
    np.testing.assert_array_equal(far, at_norm)
