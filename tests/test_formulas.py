import math
import re

import numpy as np
import pytest

from marginlab.geometry.regions import BAND, region_labels
from marginlab.lab_state import LAB_LOSSES
from marginlab.losses.formulas import cosface_band_width, loss_formula
from marginlab.losses.margins import target_logit_np


@pytest.mark.parametrize("loss", LAB_LOSSES)
def test_every_lab_loss_has_a_formula(loss):
    formula = loss_formula(loss, {"s": 30.0, "m1": 1.35, "m2": 0.5, "m3": 0.35})
    assert formula.general.startswith("L = ")
    assert formula.substituted
    assert formula.general.count("{") == formula.general.count("}")
    assert formula.substituted.count("{") == formula.substituted.count("}")


def test_numbers_are_substituted():
    formula = loss_formula("arcface", {"s": 30.0, "m2": 0.5})
    assert "30" in formula.substituted and "0.5" in formula.substituted
    assert "28.6°" in formula.note
    assert formula.paper == "Deng et al., CVPR 2019"


def test_the_fallback_note_tells_where_and_what():
    note = loss_formula("arcface", {"s": 16.0, "m2": 0.5, "policy": "fallback"}).note
    assert f"{math.degrees(math.pi - 0.5):.1f}°" in note
    assert f"{0.5 * math.sin(0.5):.4g}" in note  # the paper's mm = m·sin m
    assert "rises again" in loss_formula("arcface", {"m2": 0.5, "policy": "none"}).note


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="no formula"):
        loss_formula("triplet", {})


def test_the_fallback_note_says_whose_code_it_is():
    """insightface's released code has the fallback for ArcFace only; ours generalises it."""
    arcface = loss_formula("arcface", {"m2": 0.5, "policy": "fallback"}).note
    assert "ArcFace's released code (insightface)" in arcface and "paper's code" not in arcface
    combined = loss_formula("combined", {"m1": 1.0, "m2": 0.3, "m3": 0.2}).note
    assert "for ArcFace only; generalised here" in combined


def test_the_combined_fallback_note_gives_the_curve_past_the_threshold():
    """The note's s·(cos θ − c) is the target logit the margin function draws there (m3 too)."""
    params = {"m1": 0.9, "m2": 0.4, "m3": 0.15, "policy": "fallback"}
    note = loss_formula("combined", {"s": 1.0, **params}).note
    offset = float(re.search(r"cos θ − ([0-9.]+)\)", note).group(1))
    theta = np.radians(np.array([175.0, 179.0]))
    psi = target_logit_np(np.cos(theta), loss="combined", **params)
    np.testing.assert_allclose(psi, np.cos(theta) - offset, atol=1e-4)


@pytest.mark.parametrize(("gap_deg", "m3"), [(36.0, 0.1), (60.0, 0.2), (100.0, 0.35)])
def test_cosface_band_on_the_circle_is_centred_on_the_bisector(gap_deg, m3):
    """Two weights gap apart: the region_labels band (what the circle paints) is centred on
    their bisector and 2·asin(m / (2 sin(gap/2))) wide, as the CosFace note says."""
    gap = math.radians(gap_deg)
    weights = np.array([[1.0, 0.0], [math.cos(gap), math.sin(gap)]])
    phi = np.linspace(0.0, gap, 200_001)
    directions = np.stack([np.cos(phi), np.sin(phi)], axis=1)
    band = region_labels(directions, weights, loss="cosface", s=16.0, m3=m3) == BAND
    lo, hi = phi[band].min(), phi[band].max()
    assert (lo + hi) / 2 == pytest.approx(gap / 2, abs=1e-4)
    assert hi - lo == pytest.approx(cosface_band_width(m3, gap), abs=1e-4)
    note = loss_formula("cosface", {"m3": m3}).note
    assert "centred on their bisector" in note and "2·asin(m / (2 sin(Δ/2)))" in note
    assert cosface_band_width(2.5, gap) == math.pi  # m ≥ 2 sin(gap/2): no class wins at all
