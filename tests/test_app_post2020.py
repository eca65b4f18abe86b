"""The margins that adapt in the app (Streamlit AppTest): the Lab trains each, draws its own
figures (logits vs θ, margin vs ‖x‖, running state) and shows its running state in the metric
strip; the URL carries its parameters; the Formulas page writes its numbers."""

from __future__ import annotations

import pytest

from test_app_pages import live_figures, page


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        ("adaface", {"lab_family", "lab_norms", "lab_state"}),
        ("magface", {"lab_family", "lab_norms"}),
        ("curricularface", {"lab_family", "lab_state"}),
        ("adacos", {"lab_family", "lab_state"}),
    ],
)
def test_lab_trains_and_draws_a_margin_that_adapts(loss: str, expected: set[str]) -> None:
    at = page("views/lab.py", {"loss": loss})
    assert not at.exception, at.exception
    {b.label: b for b in at.button}["Step"].click().run()
    assert not at.exception, at.exception
    assert at.session_state["lab"].steps == 5
    figures = live_figures(at)
    assert expected <= set(figures), sorted(figures)
    assert not ({"lab_family", "lab_norms", "lab_state"} - expected) & set(figures)
    if loss == "adacos":  # its running s, in the strip next to the step and the accuracy
        labels = [metric.label for metric in at.metric]
        assert "AdaCos s" in labels and "test accuracy" in labels


def test_the_url_carries_adaface_parameters_to_the_run() -> None:
    at = page("views/lab.py", {"loss": "adaface", "m": "0.35", "h": "0.5"})
    assert not at.exception, at.exception
    config = at.session_state["lab"].runs[0].config
    assert (config.loss, config.m, config.h) == ("adaface", 0.35, 0.5)


def test_formulas_page_writes_magface_with_its_numbers() -> None:
    at = page("views/formulas.py", {"loss": "magface", "u_a": "20"})
    assert not at.exception, at.exception
    assert at.title[0].value == "Formulas · MagFace"
    assert any(r"a \in [1, 20]" in latex.value for latex in at.latex)
