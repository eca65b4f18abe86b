import math

import pytest

from marginlab.lab_state import LAB_LOSSES
from marginlab.losses.formulas import loss_formula


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
