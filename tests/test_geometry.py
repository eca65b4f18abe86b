"""Regions and margin bands agree with the margin function; circle/sphere helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from margin_params import FIXED_MARGINS
from marginlab.geometry.regions import (
    BAND,
    REGION_LOSSES,
    band_intervals,
    circle_directions,
    circle_runs,
    icosphere,
    icosphere_face_centres,
    pair_angle_histograms,
    pca_to_3d,
    predicted_labels,
    raw_plane_regions,
    region_labels,
    sphere_face_labels,
    subdivisions_for_band,
)
from marginlab.losses.margins import target_logit
from marginlab.losses.registry import loss_spec

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: a second thread only waits


PARAMS = FIXED_MARGINS


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _independent_logits(u, w, loss, s, params):
    """Logits computed here from target_logit directly: (N, C) with margin, (N, C) without."""
    cos = _unit(u) @ _unit(w.reshape(-1, w.shape[-1])).T
    if w.ndim == 3:
        cos = cos.reshape(len(u), w.shape[0], w.shape[1]).max(axis=2)
    name = "arcface" if loss == "subcenter-arcface" else loss
    psi = target_logit(torch.as_tensor(cos), loss=name, **params).numpy()
    scale = 1.0 if loss == "sphereface" else s  # A-Softmax scales by ‖x‖ = 1
    return scale * psi, scale * cos


# The post-2020 family's regions are its head's leads (tests/test_losses_post2020.py).
TARGET_LOGIT_LOSSES = tuple(loss for loss in REGION_LOSSES if not loss_spec(loss).adaptive)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("loss", TARGET_LOGIT_LOSSES)
def test_region_labels_agree_with_margin_function(loss, dim):
    rng = np.random.default_rng(7 + dim)
    n_classes, s = 5, 20.0
    shape = (n_classes, 3, dim) if loss == "subcenter-arcface" else (n_classes, dim)
    w = rng.normal(size=shape) * rng.uniform(0.5, 2.0, size=shape[:-1] + (1,))
    u = rng.normal(size=(3000, dim)) * 3.0  # not unit: region_labels normalises
    labels = region_labels(u, w, loss=loss, s=s, **PARAMS[loss])
    assert labels.shape == (3000,) and labels.dtype == np.int64
    if loss in ("softmax", "center"):
        np.testing.assert_array_equal(labels, np.argmax(_unit(u) @ w.T, axis=1))
        return
    if loss == "normface":
        np.testing.assert_array_equal(labels, np.argmax(_unit(u) @ _unit(w).T, axis=1))
        return
    z_margin, z_plain = _independent_logits(u, w, loss, s, PARAMS[loss])
    owners = np.zeros((3000, n_classes), dtype=bool)
    for i in range(n_classes):
        others = np.delete(z_plain, i, axis=1).max(axis=1)
        owners[:, i] = z_margin[:, i] > others
    inside = labels >= 0
    assert owners[np.flatnonzero(inside), labels[inside]].all()
    assert not owners[~inside].any()
    assert inside.any() and (~inside).any()  # both kinds of direction were exercised


def _band_widths(w, loss, n=36_000, **params):
    labels = region_labels(circle_directions(n), w, loss=loss, s=30.0, **params)
    return [(a, b - a) for a, b in band_intervals(labels)], 2 * math.pi / n


@pytest.mark.parametrize("m", [0.1, 0.3, 0.5])
def test_arcface_band_on_circle_is_m_wide(m):
    w = np.array([[1.0, 0.0], [0.0, 2.0]])  # 90° apart
    bands, step = _band_widths(w, "arcface", m2=m)
    short = [(a, width) for a, width in bands if a < math.pi / 2]
    assert len(short) == 1
    start, width = short[0]
    assert abs(width - m) <= 2 * step
    assert abs(start + width / 2 - math.pi / 4) <= 2 * step  # centred on the bisector


@pytest.mark.parametrize("m", [0.05, 0.2, 0.35])
def test_cosface_band_matches_analytic_width(m):
    # Boundary cos θ1 − m = cos θ2 with θ1 + θ2 = Δ: cos θ1 − cos(Δ − θ1) = m gives
    # −2 sin(Δ/2) sin(θ1 − Δ/2) = m, so θ1 = Δ/2 − asin(m / (2 sin(Δ/2))); the band is twice that.
    delta = math.pi / 2
    expected = 2 * math.asin(m / (2 * math.sin(delta / 2)))
    bands, step = _band_widths(np.array([[1.0, 0.0], [0.0, 1.0]]), "cosface", m3=m)
    widths = [width for a, width in bands if a < delta]
    assert len(widths) == 1 and abs(widths[0] - expected) <= 2 * step


def test_sphereface_band_matches_analytic_width():
    # λ = 0, m = 4: cos 4θ1 = cos θ2 with θ2 = Δ − θ1 gives θ1 = Δ/(m + 1): width Δ(m−1)/(m+1).
    delta = math.pi / 2
    bands, step = _band_widths(np.array([[1.0, 0.0], [0.0, 1.0]]), "sphereface", sphere_m=4)
    widths = [width for a, width in bands if a < delta]
    assert len(widths) == 1 and abs(widths[0] - delta * 3 / 5) <= 2 * step


@pytest.mark.parametrize("loss", ["softmax", "normface", "center"])
def test_plain_losses_have_no_band(loss):
    w = circle_directions(10)
    assert (region_labels(circle_directions(3600), w, loss=loss, s=10.0) != BAND).all()


def test_circle_runs_merge_across_zero():
    runs = circle_runs(np.array([0, 0, 1, 1, BAND, 0]))
    step = 2 * math.pi / 6
    assert [r.label for r in runs] == [1, BAND, 0]
    assert runs[-1].start == pytest.approx(4.5 * step) and runs[-1].end == pytest.approx(7.5 * step)
    assert sum(r.end - r.start for r in runs) == pytest.approx(2 * math.pi)
    (whole,) = circle_runs(np.zeros(4, dtype=int))
    assert whole.end - whole.start == pytest.approx(2 * math.pi)


def test_icosphere_counts_units_and_cache():
    verts, faces = icosphere(4)
    assert verts.shape == (2562, 3) and faces.shape == (5120, 3)
    np.testing.assert_allclose(np.linalg.norm(verts, axis=1), 1.0)
    normals = np.cross(
        verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]]
    )
    assert (np.einsum("ij,ij->i", normals, verts[faces].mean(axis=1)) > 0).all()  # outward
    assert icosphere(4)[0] is verts and not verts.flags.writeable
    assert icosphere_face_centres(4).shape == (5120, 3)
    assert subdivisions_for_band(0.05) == 5 and subdivisions_for_band(0.5) == 4


def test_sphere_face_labels_show_arcface_bands():
    w = np.eye(3)
    labels = sphere_face_labels(w, loss="arcface", s=30.0, m2=0.3)
    assert set(np.unique(labels)) == {BAND, 0, 1, 2}
    # The band covers roughly m/(area-weighted) a strip around each great-circle boundary.
    assert 0.02 < np.mean(labels == BAND) < 0.5


def test_raw_plane_regions_with_bias_shifts_the_line():
    w = np.array([[1.0, 0.0], [-1.0, 0.0]])
    grid = np.array([[0.4, 0.0], [0.6, 0.0], [0.6, 5.0]])
    # x·(1,0) vs x·(−1,0) + 1: class 0 wins for x > 0.5
    np.testing.assert_array_equal(raw_plane_regions(grid, w, np.array([0.0, 1.0])), [1, 0, 0])
    np.testing.assert_array_equal(raw_plane_regions(grid, w), [0, 0, 0])


def test_predicted_labels_have_no_margin():
    w = np.array([[1.0, 0.0], [0.0, 1.0]])
    x = np.array([[1.0, 0.9], [0.1, 1.0]])  # both inside the ArcFace band for m = 0.5
    np.testing.assert_array_equal(predicted_labels(x, w, loss="arcface"), [0, 1])
    np.testing.assert_array_equal(predicted_labels(x, w, loss="softmax", bias=[0.0, 1.0]), [1, 1])


def test_pca_to_3d_keeps_directions_of_a_3d_subspace():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(8, 3)))[0]
    x3 = rng.normal(size=(50, 3))
    proj = pca_to_3d(x3 @ basis.T)
    a = _unit(x3) @ _unit(x3).T
    b = proj.points @ proj.points.T
    np.testing.assert_allclose(a, b, atol=1e-9)  # angles preserved exactly in the subspace
    assert proj.explained.sum() == pytest.approx(1.0)
    w = proj.project(rng.normal(size=(4, 2, 8)))
    assert w.shape == (4, 2, 3) and np.isfinite(w).all()
    zero = pca_to_3d(np.zeros((5, 6)))
    assert np.isfinite(zero.points).all() and not zero.points.any()


def test_pair_angle_histograms_all_pairs_and_sampled():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    out = pair_angle_histograms(x, np.array([0, 0, 1]), bins=2)
    assert out["n_positive"] == 1 and out["n_negative"] == 2 and not out["sampled"]
    np.testing.assert_array_equal(out["positive"], [1, 0])
    np.testing.assert_array_equal(out["negative"], [0, 2])  # 90° opens the bin [π/2, π]
    rng = np.random.default_rng(1)
    big = pair_angle_histograms(rng.normal(size=(500, 3)), rng.integers(0, 5, 500), max_pairs=1000)
    assert big["sampled"] and big["n_positive"] + big["n_negative"] == 1000
