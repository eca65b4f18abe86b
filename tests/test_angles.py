"""Angle helpers on small hand-computed examples (radians)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marginlab.geometry.angles import (
    angles_to_weights,
    dot_rows,
    feature_statistics,
    nearest_other_angles,
    normalize_rows,
    sample_leads,
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


def test_sample_leads_hand_values():
    # Weights at 0°, 90° and 180°. A sample at 20° of class 0: own 20°, nearest other 70° → 50°.
    # A sample at 60° of class 1: own 30°, nearest other (W_0) 60° → 30°.
    # A sample at 60° labelled 0: own 60°, nearest other (W_1) 30° → −30° (wrong side).
    w = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    x = np.array([_unit(20), _unit(60), _unit(60)])
    y = np.array([0, 1, 0])
    np.testing.assert_allclose(sample_leads(x, y, w), np.radians([50, 30, -30]), atol=1e-9)


def test_sample_leads_with_sub_centres_take_the_nearest_sub_centre():
    # Class 0 has sub-centres at 0° and 100°, class 1 one at 90° (twice, K = 2).
    w = np.array([[_unit(0), _unit(100)], [_unit(90), _unit(90)]])
    x = np.array([_unit(95), _unit(45)])
    y = np.array([0, 1])
    # 95°: own = 5° (to 100°), other = 5° (to 90°) → 0. 45°: own 45°, other 45° → 0.
    np.testing.assert_allclose(sample_leads(x, y, w), [0.0, 0.0], atol=1e-9)
    x = np.array([_unit(98)])
    np.testing.assert_allclose(sample_leads(x, np.array([0]), w), np.radians([8 - 2]), atol=1e-9)
    np.testing.assert_allclose(angles_to_weights(x, w), np.radians([[2, 8]]), atol=1e-9)


def test_sample_leads_positive_exactly_when_the_nearest_weight_is_right():
    rng = np.random.default_rng(3)
    for weights in (rng.normal(size=(7, 3)), rng.normal(size=(7, 4, 3))):
        x = rng.normal(size=(500, 3))
        y = rng.integers(0, 7, 500)
        theta = angles_to_weights(x, weights)
        nearest = np.argmin(theta, axis=1)
        np.testing.assert_array_equal(sample_leads(x, y, weights) > 0, nearest == y)


def test_sample_leads_with_one_class_and_zero_features_are_finite():
    out = sample_leads(np.array([[1.0, 0.0]]), np.array([0]), np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(out, [math.pi - math.pi / 4])
    out = sample_leads(np.zeros((2, 2)), np.array([0, 1]), W)
    np.testing.assert_allclose(out, [0.0, 0.0])


def test_feature_statistics_equal_table3_intra_and_inter():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(60, 3)), rng.integers(0, 4, 60)
    stats = table3_statistics(x, y, rng.normal(size=(4, 3)))
    alone = feature_statistics(x, y)
    assert alone == {"intra": stats["intra"], "inter": stats["inter"]}


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
