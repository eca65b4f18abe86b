"""Reproduce the paper: every item builds offline on real short runs (MNIST digits where the
faces are missing, and Fig. 6 says what it needs), with the Olivetti reference copy the face
items use faces, and the page makes each item with one click."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from marginlab.experiments.paper import FIG4B_REFERENCE, ITEMS
from marginlab.figures import PAPER_CURVES

pytestmark = pytest.mark.usefixtures("one_thread")
PAGE = str(Path(__file__).resolve().parents[1] / "app" / "views" / "paper.py")
SHORT = 20  # steps: a test, not a study


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("MARGINLAB_CACHE", str(tmp_path))  # no faces cached, no internet here
    return tmp_path


@pytest.fixture
def olivetti(shared_data_dir, monkeypatch):
    monkeypatch.setenv("MARGINLAB_CACHE", str(shared_data_dir))
    return shared_data_dir


def finite_rows(rows) -> bool:
    values = [v for row in rows for v in row.values() if isinstance(v, float)]
    return bool(values) and all(math.isfinite(v) for v in values)


def test_every_item_says_what_the_paper_showed_what_the_app_shows_and_the_difference():
    assert list(ITEMS) == ["fig3", "fig4a", "fig4b", "fig5", "table3", "fig6"]
    for item in ITEMS.values():
        assert len(item.paper) > 80 and len(item.app) > 80 and len(item.differs) > 40, item.key


def test_fig4b_curves_match_the_reference_numbers():
    result = ITEMS["fig4b"].make()
    assert len(result.table) == len(PAPER_CURVES) == len(FIG4B_REFERENCE)
    for row, reference in zip(result.table, FIG4B_REFERENCE, strict=True):
        values = [row[f"{t}°"] for t in (20, 30, 45, 60, 90, 100)]
        np.testing.assert_allclose(values, reference, atol=1.5e-4)
        assert row["largest difference to the reference"] < 1e-4
    [figure] = result.figures
    assert len(figure.data) == len(PAPER_CURVES)
    go.Figure(figure.to_dict())


def test_fig5_draws_the_boundary_panels():
    [figure] = ITEMS["fig5"].make().figures
    go.Figure(figure.to_dict())
    assert "Fig. 5" in figure.layout.title.text


def test_offline_fig3_uses_digits_and_fig6_says_what_it_needs(offline):
    result = ITEMS["fig3"].make(steps=SHORT)
    assert "MNIST digits 0–7" in result.notes[0]
    assert len(result.figures) == 2 and [r["loss"] for r in result.table][0] == "Softmax"
    assert "ArcFace" in result.table[1]["loss"] and finite_rows(result.table)
    for figure in result.figures:
        go.Figure(figure.to_dict())
    fig6 = ITEMS["fig6"].make(steps=SHORT)
    assert fig6.skipped.startswith("Fig. 6 needs faces") and "Olivetti" in fig6.skipped
    assert fig6.figures == () and fig6.table == ()


def test_fig4a_theta_starts_near_90_degrees_and_falls(offline):
    result = ITEMS["fig4a"].make(steps=30)
    shift, curve = result.figures
    start, end = (np.asarray(trace.y, dtype=float) for trace in shift.data)
    assert start.sum() == pytest.approx(1.0) and end.sum() == pytest.approx(1.0)
    means = [float(t.name.split("mean ")[1].split("°")[0]) for t in shift.data]
    assert 75 <= means[0] <= 105 and means[1] < means[0]  # 16-D: random angles near 90°
    assert "step 0" in shift.data[0].name and "step 30" in shift.data[1].name
    assert "ArcFace" in curve.data[-1].name


def test_offline_table3_has_three_sets_for_six_losses(offline):
    result = ITEMS["table3"].make(steps=SHORT)
    assert "digits 6–9 as the unseen" in result.notes[0]
    losses = [row["loss"] for row in result.table]
    assert losses[0] == "Softmax" and "ArcFace" in losses and len(losses) == 6
    for row in result.table:
        for name in ("training", "held-out", "unseen"):
            assert f"Intra ° ({name})" in row and f"Inter ° ({name})" in row
        assert 0.0 < row["W-Inter °"] <= 180.0
    assert finite_rows(result.table)


def test_with_olivetti_the_face_items_use_faces(olivetti):
    fig3 = ITEMS["fig3"].make(steps=SHORT)
    assert "8 Olivetti people" in fig3.notes[0]
    table = ITEMS["table3"].make(steps=SHORT)
    assert "10 unseen people" in table.notes[0] and "left out" in table.notes[1]
    assert "Intra ° (held-out)" not in table.table[0] and finite_rows(table.table)
    fig6 = ITEMS["fig6"].make(steps=SHORT)
    assert not fig6.skipped and len(fig6.figures) == 1
    assert [row["loss"] for row in fig6.table] == ["Softmax", "ArcFace"]
    assert all(row["pairs (same / different)"] == "450 / 450" for row in fig6.table)


def test_the_page_makes_items_with_one_click(offline):
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception, at.exception
    assert [s.value for s in at.subheader] == [item.title for item in ITEMS.values()]
    at.button(key="paper_make_fig4b").click().run()
    assert not at.exception and len(at.dataframe) == 1
    at.select_slider(key="paper_steps_fig3").set_value(SHORT).run()
    at.button(key="paper_make_fig3").click().run()
    assert not at.exception
    plots = [e for e in at.get("bidi_component") if e.proto.component_name]  # live_plotly
    assert len(plots) == 1 + 2  # Fig. 4b, then softmax beside ArcFace
    at.select_slider(key="paper_steps_fig6").set_value(SHORT).run()
    at.button(key="paper_make_fig6").click().run()
    assert any("Fig. 6 needs faces" in w.value for w in at.warning)
    at.select_slider(key="paper_steps_fig3").set_value(100).run()
    assert any("other settings" in info.value for info in at.info)
