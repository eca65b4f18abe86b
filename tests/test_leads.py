"""Leads and "margin met" (geometry.leads), the CLI's angle report and Table 3 on three sets
(experiments.angle_report), on hand-made layouts and on real, short training runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marginlab.experiments.angle_report import (
    HELD_OUT_SET,
    TABLE3_DEFINITIONS,
    TRAINING_SET,
    UNSEEN_SET,
    angle_report,
    head_weights,
    table3_sets,
)
from marginlab.figures.leads import summary_for
from marginlab.geometry.angles import angles_to_weights, table3_statistics
from marginlab.geometry.leads import lead_summary
from marginlab.geometry.regions import region_labels
from marginlab.training.config import default_config
from marginlab.training.run import Run

pytestmark = pytest.mark.usefixtures("one_thread")


def _ring(n: int, offset_deg: float = 0.0) -> np.ndarray:
    phi = np.radians(np.arange(n) * 360.0 / n + offset_deg)
    return np.stack([np.cos(phi), np.sin(phi)], axis=1)


def _noisy_ring_samples(seed: int = 0, n: int = 2000, spread_deg: float = 20.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    phi = np.radians(labels * 36.0 + rng.normal(0.0, spread_deg, n))
    return np.stack([np.cos(phi), np.sin(phi)], axis=1), labels


def test_arcface_margin_met_is_the_region_test_the_circle_paints():
    """Lead ≥ m is ArcFace's boundary θ_y + m = θ_j: on every sample with θ_y + m ≤ π the
    lead test and region_labels (what the circle shades) agree exactly."""
    x, y = _noisy_ring_samples()
    w = _ring(10, offset_deg=3.0)
    m = 0.3
    summary = summary_for(x, y, w, loss="arcface", s=16.0, m2=m)
    assert summary.requested == m
    owner = region_labels(x, w, loss="arcface", s=16.0, m2=m)
    own = angles_to_weights(x, w)[np.arange(len(y)), y]
    inside = own + m <= math.pi
    assert inside.mean() > 0.99
    np.testing.assert_array_equal(summary.met[inside], (owner == y)[inside])
    assert 0.05 < summary.met_fraction < summary.positive < 1.0


@pytest.mark.parametrize(
    ("loss", "margin"),
    [("cosface", {"m3": 0.1}), ("sphereface", {"sphere_m": 4, "lam": 5.0}), ("normface", {})],
)
def test_losses_without_an_angular_margin_use_their_with_margin_region(loss, margin):
    x, y = _noisy_ring_samples(seed=1)
    w = _ring(10)
    summary = summary_for(x, y, w, loss=loss, s=16.0, **margin)
    assert summary.requested is None and "region" in summary.margin_test
    np.testing.assert_array_equal(
        summary.met, region_labels(x, w, loss=loss, s=16.0, **margin) == y
    )
    if loss == "normface":  # no margin: met = the nearest weight is right = lead > 0
        np.testing.assert_array_equal(summary.met, summary.leads > 0)
    else:
        assert summary.met_fraction < summary.positive


def test_lowest_class_is_the_class_meeting_the_margin_least_often():
    x, y = _noisy_ring_samples(seed=2, spread_deg=4.0)
    seven = y == 7
    phi = np.radians(7 * 36.0 + np.random.default_rng(5).normal(0.0, 15.0, seven.sum()))
    x[seven] = np.stack([np.cos(phi), np.sin(phi)], axis=1)  # class 7 spread widely
    summary = lead_summary(x, y, _ring(10), loss="arcface", requested_margin=0.2)
    worst, fraction = summary.lowest_class()
    assert worst == 7
    assert fraction == min(summary.met_by_class().values()) < summary.met_fraction


def test_empty_input_gives_zeros():
    summary = lead_summary(np.zeros((0, 2)), np.zeros(0, dtype=int), _ring(3), loss="cosface",
                           requested_margin=None, m3=0.1)  # fmt: skip
    assert (summary.median, summary.positive, summary.met_fraction) == (0.0, 0.0, 0.0)
    assert summary.lowest_class() is None


# ------------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def trained_runs():
    runs = {}
    for loss in ("arcface", "subcenter-arcface", "cosface"):
        run = Run(default_config(loss, 2, device="cpu", probe_size=300, snapshot_every=1000))
        run.step(80)
        runs[loss] = run
    return runs


@pytest.mark.parametrize("loss", ["arcface", "subcenter-arcface", "cosface"])
def test_lead_positive_equals_the_nearest_normalised_weight_accuracy(trained_runs, loss):
    """On the whole test set: the fraction with lead > 0 is the head's own accuracy (these
    heads predict by the largest cosine, over all sub-centres for sub-center ArcFace)."""
    run = trained_runs[loss]
    report = angle_report(run, run.data.test_images, run.data.test_labels)
    accuracy = run.evaluate()["test_acc"]
    assert 0.3 < accuracy < 1.0  # trained, not perfect: the equality is not vacuous
    assert report["lead_positive"] == pytest.approx(accuracy, abs=1e-12)
    features = run.embed(run.data.test_images)
    _, subcentres = head_weights(run)
    theta = angles_to_weights(features, subcentres)
    nearest = np.argmin(theta, axis=1) == run.data.test_labels.numpy()
    assert report["lead_positive"] == pytest.approx(nearest.mean(), abs=1e-12)
    assert report["margin_met"] <= report["lead_positive"]


def test_angle_report_has_every_field_in_degrees(trained_runs):
    run = trained_runs["arcface"]
    report = angle_report(run, run.data.test_images, run.data.test_labels)
    assert set(report) == {
        "median_lead_deg", "lead_positive", "margin_met",
        "w_ec_deg", "w_inter_deg", "intra_deg", "inter_deg",
    }  # fmt: skip
    assert all(math.isfinite(v) for v in report.values())
    dominant, _ = head_weights(run)
    stats = table3_statistics(run.embed(run.data.test_images), run.data.test_labels, dominant)
    assert report["w_ec_deg"] == pytest.approx(math.degrees(stats["w_ec"]))
    assert -180 <= report["median_lead_deg"] <= 180


def test_table3_on_three_labelled_sets(trained_runs):
    run = trained_runs["arcface"]
    # Unseen identities stand in here: test digits relabelled as five "people" the head has
    # no weight for (the Faces page passes Olivetti's held-out people).
    images = run.data.test_images[:200]
    people = run.data.test_labels[:200].numpy() % 5 + 100
    rows = table3_sets(run, unseen=(images.numpy(), people), train_limit=400)
    assert [row.set for row in rows] == [TRAINING_SET, HELD_OUT_SET, UNSEEN_SET]
    train, held_out, unseen = rows
    assert train.images == 400 and "training images" in train.note
    assert held_out.images == 300 and "test images" in held_out.note
    assert unseen.w_ec is None and unseen.w_inter is None and "5 people" in unseen.note
    snap_stats = run.snapshot().stats  # the probe row is the snapshot's Table 3
    assert held_out.intra == pytest.approx(snap_stats["intra"], abs=1e-6)
    assert held_out.w_ec == pytest.approx(snap_stats["w_ec"], abs=1e-6)
    row = train.degrees()
    assert set(row) >= {"set", "W-EC °", "W-Inter °", "Intra °", "Inter °"}
    assert "aligned" in TABLE3_DEFINITIONS["W-EC"] and "not how tight" in TABLE3_DEFINITIONS["W-EC"]
