"""Angle helpers on small hand-computed examples (radians)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marginlab.geometry.angles import (
    angles_to_weights,
    dot_rows,
    measured_margin,
    nearest_other_angles,
    normalize_rows,
    table3_statistics,
    target_angles,
    theta_histogram,
)

# Two class weights on the x and y axes (one of them long: only directions count).
W = np.array([[1.0, 0.0], [0.0, 3.0]])


def _unit(deg: float) -> list[float]:
    r = math.radians(deg)
    return [math.cos(r), math.sin(r)]


def test_normalize_rows_keeps_zero_rows_zero():
    out = normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert np.isfinite(out).all()


def test_angles_to_weights_hand_values():
    x = np.array([_unit(0), _unit(30), [-2.0, 0.0], [0.0, 0.0]])
    theta = angles_to_weights(x, W)
    expected = np.radians([[0, 90], [30, 60], [180, 90], [90, 90]])
    np.testing.assert_allclose(theta, expected, atol=1e-7)
    assert theta.min() >= 0 and theta.max() <= math.pi


def test_target_and_nearest_other():
    x = np.array([_unit(10), _unit(80), _unit(45)])
    y = np.array([0, 1, 1])
    np.testing.assert_allclose(target_angles(x, y, W), np.radians([10, 10, 45]), atol=1e-9)
    np.testing.assert_allclose(nearest_other_angles(x, y, W), np.radians([80, 80, 45]), atol=1e-9)


def test_nearest_other_with_one_class_is_pi():
    out = nearest_other_angles(np.array([[1.0, 0.0]]), np.array([0]), np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(out, [math.pi])


def test_measured_margin_hand_values():
    # Class 0 samples at 0° and 20°: largest own angle 20°, smallest angle to W_1 70° → 50°.
    # Class 1 samples at 60° and 80°: largest own angle 30°, smallest to W_0 60° → 30°.
    # Class 2 (a third weight at 180°) has no sample → 0.
    w = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    x = np.array([_unit(0), _unit(20), _unit(60), _unit(80)])
    y = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(measured_margin(x, y, w), np.radians([50, 30, 0]), atol=1e-9)


def test_measured_margin_negative_when_classes_overlap():
    x = np.array([_unit(60), _unit(30)])  # class 0 sample past the bisector
    y = np.array([0, 1])
    np.testing.assert_allclose(measured_margin(x, y, W), np.radians([30 - 60, 30 - 60]), atol=1e-9)


def test_table3_statistics_hand_values():
    # Class 0 at ±10° around 0°, class 1 at 80°±10° ; weights at 0° and 90°.
    x = np.array([_unit(-10), _unit(10), _unit(70), _unit(90)])
    y = np.array([0, 0, 1, 1])
    stats = table3_statistics(x, y, W)
    assert set(stats) == {"w_ec", "w_inter", "intra", "inter"}
    # Centres point at 0° and 80°: W-EC = mean(0°, 10°); W-Inter = 90°; Intra = 10°; Inter = 80°.
    np.testing.assert_allclose(stats["w_ec"], math.radians(5), atol=1e-9)
    np.testing.assert_allclose(stats["w_inter"], math.radians(90), atol=1e-9)
    np.testing.assert_allclose(stats["intra"], math.radians(10), atol=1e-9)
    np.testing.assert_allclose(stats["inter"], math.radians(80), atol=1e-9)
    assert all(isinstance(v, float) for v in stats.values())


def test_table3_degenerate_inputs_are_finite():
    zeros = np.zeros((3, 2))
    stats = table3_statistics(zeros, np.array([0, 0, 0]), W)
    assert all(math.isfinite(v) for v in stats.values())
    stats = table3_statistics(np.zeros((0, 2)), np.zeros(0, dtype=int), W)
    assert all(math.isfinite(v) for v in stats.values())
    stats = table3_statistics(np.ones((2, 2)), np.array([0, 0]), np.array([[1.0, 0.0]]))
    assert stats["w_inter"] == 0.0 and stats["inter"] == 0.0


@pytest.mark.parametrize("bins", [4, 36])
def test_theta_histogram_counts_and_edges(bins):
    angles = np.array([0.0, 0.05, math.pi / 2, math.pi, np.nan, 4.0])
    counts, edges = theta_histogram(angles, bins=bins)
    assert len(edges) == bins + 1
    np.testing.assert_allclose([edges[0], edges[-1]], [0.0, math.pi])
    assert counts.sum() == 5  # NaN dropped, 4.0 clipped to π
    assert counts[0] == 2 and counts[-1] == 2


def test_dot_rows_small_and_large_dimensions_agree_with_matmul():
    rng = np.random.default_rng(0)
    for dim in (2, 3, 8, 9, 64):
        a, b = rng.normal(size=(7, dim)), rng.normal(size=(5, dim))
        np.testing.assert_allclose(dot_rows(a, b), a @ b.T, atol=1e-12)
