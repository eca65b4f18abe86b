"""The (s, m) phase map: the documented rule, the per-run measurements on real short runs, the
resumable cache, the figure, and the phases the default ArcFace grid shows in 2-D."""

from __future__ import annotations

import json
import math

import plotly.graph_objects as go
import pytest
import torch

from app_figures import live_figures
from marginlab.experiments import phase_map as pm
from marginlab.experiments.phase_rule import PHASES, classify, measure_run, summary
from marginlab.figures import phase_map_figure
from marginlab.training.config import default_config
from marginlab.training.run import Run

pytestmark = pytest.mark.usefixtures("one_thread")


def measured(**changes) -> dict[str, float]:
    """A run's measurements that the rule reads: a healthy run unless changed."""
    run = {
        "accuracy": 0.9,
        "test_loss": 0.5,
        "p_true": 0.8,
        "margin_met": 0.8,
        "min_recall": 0.7,
        "skipped_steps": 0.0,
        "classes": 10.0,
    }
    return {**run, **changes}


def test_the_rule_names_every_phase_first_match_first():
    assert classify([measured(), measured(accuracy=0.85)]) == "works"
    assert classify([measured(p_true=0.3), measured(p_true=0.4)]) == "underfits"
    assert classify([measured(margin_met=0.2)] * 2) == "margin too large"
    assert classify([measured(margin_met=0.2, p_true=0.3)] * 2) == "underfits"  # s first
    assert classify([measured(accuracy=0.9), measured(accuracy=0.7)]) == "unstable"
    assert classify([measured(), measured(min_recall=0.05)]) == "collapsed"
    assert classify([measured(accuracy=0.2)]) == "collapsed"  # twice chance for 10 classes
    assert classify([measured(min_recall=0.0), measured(skipped_steps=1.0)]) == "NaN"
    assert classify([]) == "not run"
    cell = summary([measured(accuracy=0.9), measured(accuracy=0.8)])
    assert cell["outcome"] == "works" and cell["runs"] == 2
    assert cell["accuracy"] == pytest.approx(0.85) and cell["spread"] == pytest.approx(0.1)
    assert (PHASES[0], PHASES[-1], len(PHASES)) == ("NaN", "works", 6)  # checked in order


def test_measurements_of_a_real_short_run():
    """Without a margin, meeting the margin is being right; with one it is harder, never easier
    (ArcFace's ψ(θ) ≤ cos θ)."""
    for m2, same in ((0.0, True), (0.5, False)):
        run = Run(default_config("arcface", 2, seed=0).with_changes(m2=m2, margin_warmup_steps=0))
        run.step(30)
        numbers = measure_run(run)
        assert numbers["accuracy"] == run.evaluate()["test_acc"]
        assert 0.0 < numbers["p_true"] < 1.0 and 0.0 <= numbers["min_recall"] <= 1.0
        assert numbers["skipped_steps"] == 0.0 and numbers["classes"] == 10.0
        if same:
            assert numbers["margin_met"] == pytest.approx(numbers["accuracy"], abs=1e-3)
        else:
            assert numbers["margin_met"] < numbers["accuracy"]
        assert json.loads(json.dumps(numbers)) == numbers


def test_a_sweep_reports_progress_caches_every_run_and_resumes(tmp_path):
    grid = {"s_values": (4.0, 64.0), "m_values": (0.0, 0.8), "seeds": (0, 1)}
    seen = []
    first = pm.phase_map(
        steps=4, warmup=2, cache_dir=tmp_path, progress=lambda *a: seen.append(a), **grid
    )
    assert [s[:2] for s in seen] == [(k, 8) for k in range(1, 9)]
    assert "seed 1" in seen[-1][2] and "(46°)" in seen[-1][2]
    cells = [cell for row in first["cells"] for cell in row]
    assert all(cell["runs"] == 2 and cell["outcome"] in PHASES for cell in cells)
    [cache] = tmp_path.glob("*.json")
    seen.clear()
    again = pm.phase_map(
        steps=4, warmup=2, cache_dir=tmp_path, progress=lambda *a: seen.append(a), **grid
    )
    assert seen == [] and again["cells"] == first["cells"]  # nothing retrained

    # A sweep stopped after three runs resumes with the other five, seed 0's grid first.
    other = tmp_path / "other"

    def stop_after_three(done, total, text):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pm.phase_map(steps=4, warmup=2, cache_dir=other, progress=stop_after_three, **grid)
    partial = pm.phase_map(steps=4, warmup=2, cache_dir=other, cached_only=True, **grid)
    assert sum(cell["runs"] for row in partial["cells"] for cell in row) == 3
    assert all(cell["runs"] == 1 for cell in partial["cells"][0])  # seed 0 first
    resumed = []
    done = pm.phase_map(
        steps=4, warmup=2, cache_dir=other, progress=lambda *a: resumed.append(a), **grid
    )
    assert len(resumed) == 5 and done["cells"] == first["cells"]  # bit for bit, one thread

    cache.write_text("{not json")  # a damaged cache is recomputed, never trusted
    seen.clear()
    pm.phase_map(steps=4, warmup=2, cache_dir=tmp_path, progress=lambda *a: seen.append(a), **grid)
    assert len(seen) == 8


def test_the_figure_names_phases_with_units_and_spread(tmp_path):
    result = pm.phase_map(
        steps=3, warmup=0, s_values=(1.0, 16.0), m_values=(0.0, 0.5), seeds=(0,),
        cache_dir=tmp_path,
    )  # fmt: skip
    figure = phase_map_figure(result, margin_name="m2")
    go.Figure(figure.to_dict())  # valid plotly
    heatmap = figure.data[0]
    assert list(heatmap.y) == ["0 (0°)", "0.5 (29°)"]
    assert "rad" in figure.layout.yaxis.title.text and "s" in figure.layout.xaxis.title.text
    assert all("±" in text for row in heatmap.text for text in row)
    assert "without margin warm-up" in figure.layout.title.subtitle.text
    assert all(math.isfinite(v) for row in heatmap.z for v in row)
    empty = pm.phase_map(
        steps=3, warmup=0, s_values=(1.0,), m_values=(0.1,), seeds=(0,), cache_dir=tmp_path,
        cached_only=True,
    )  # fmt: skip
    assert empty["cells"][0][0]["outcome"] == "not run"
    assert phase_map_figure(empty).data[0].text[0][0] == ""


def test_the_phase_map_needs_a_margin_loss_and_a_sensible_setup(tmp_path):
    with pytest.raises(ValueError, match="margin loss"):
        pm.phase_map("softmax", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="at least one seed"):
        pm.phase_map(seeds=(), cache_dir=tmp_path)
    assert torch.get_num_threads() == 1


@pytest.mark.slow
def test_the_default_arcface_grid_shows_phases_besides_works():
    """Four cells of the default 2-D ArcFace map, each with its two seeds and the Lab's warm-up,
    exactly as the page trains them: the map is more than one colour (issue: every cell of the
    old map lay between 52 % and 78 %). What each cell shows was measured first
    (benchmarks/README.md, "phase map"); s = 4 is below the scale at which ten classes on a
    circle can be more than 48 % sure of the right one.

    m = 0.8 rad (46°) asks more than ten classes on a circle (36° apart) have room for: the
    runs miss the margin ("margin too large") or, in some seed, lose a class to its neighbours
    ("collapsed", which the rule checks first). Which of the two a run ends in is decided by
    float rounding: "margin too large" on the machine the map was measured on, "collapsed" on an
    AVX-512 build machine (2026-12-01), with the same code and data."""
    cells = {(4.0, 0.25): {"underfits"}, (16.0, 0.8): {"margin too large", "collapsed"}}
    cells[(16.0, 0.25)] = {"works"}
    cells[(64.0, 0.0)] = {"collapsed"}
    seen = {}
    for (s, m), _ in cells.items():
        runs = [
            pm.train_cell(
                "arcface", 2, s, m, seed=seed, steps=pm.DEFAULT_STEPS, warmup=pm.LAB_WARMUP
            )
            for seed in pm.DEFAULT_SEEDS
        ]
        seen[(s, m)] = classify(runs)
        assert s in pm.DEFAULT_S and m in pm.DEFAULT_M["m2"]
    assert all(seen[cell] in allowed for cell, allowed in cells.items()), seen
    assert len(set(seen.values()) - {"works"}) >= 2


def test_the_page_shows_a_stopped_map_from_the_cache(tmp_path, monkeypatch):
    """Two real runs of the page's own setup, then the sweep is stopped: the page draws those
    cells at once (the rest "not run") and explains its rule."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MARGINLAB_CACHE", str(tmp_path))

    def stop_after_two(done, total, text):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pm.phase_map(progress=stop_after_two)  # the defaults are what the page asks for
    page = Path(__file__).resolve().parents[1] / "app" / "views" / "phase_map.py"
    at = AppTest.from_file(str(page), default_timeout=120).run()
    assert not at.exception, at.exception
    [spec] = live_figures(at).values()
    # The figure's caption is page text under the plot (ui.live_plot), Markdown-escaped.
    captions = " ".join(text.value for text in at.caption).replace("\\", "")
    assert "2 of 16 cells" in captions
    texts = [text for row in spec["data"][0]["text"] for text in row]
    assert sum(bool(text) for text in texts) == 2
    assert any("**margin too large**" in text.value for text in at.markdown)  # the rule
