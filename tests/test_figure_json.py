"""figures.figure_json writes, character for character, what plotly.py's Figure.to_json writes,
for every figure the pages draw live (from real training) and for the awkward values."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import plotly.graph_objects as go
import pytest

from marginlab.figures import binary_boundary_figure, target_logit_figure
from marginlab.figures.figure_json import figure_json
from marginlab.figures.run import (
    adaptive_figures,
    angle_figure,
    curves_figure,
    embedding_figure,
    logit_figure,
    probability_figure,
    raw_figure,
)
from marginlab.figures.style import fast_figure
from marginlab.training.config import default_config
from marginlab.training.run import Run

FAST = {"device": "cpu", "probe_size": 200, "snapshot_every": 10}
# The Lab's default, a sphere, raw softmax with a bias, and margins that adapt.
RUNS = [
    ("arcface", 2, {}),
    ("cosface", 3, {}),
    ("softmax", 2, {"bias": True}),
    ("adaface", 2, {}),
    ("elasticface-arc", 2, {}),
    ("magface", 2, {}),
    ("curricularface", 3, {}),
    ("subcenter-arcface", 2, {}),
    ("adacos", 3, {}),
    ("sphereface", 5, {}),
]


def live_figures(loss: str, dim: int, extra: dict) -> list[go.Figure]:
    run = Run(default_config(loss, dim, **FAST, **extra))
    for _ in range(3):
        run.step(10)
        run.snapshot()
    snap, history = run.latest_snapshot(), list(run.history)
    labels, names = run.data.probe_labels, tuple(run.data.dataset.class_names)
    params = {"loss": loss, **run.config.head_params()}
    figures = [
        embedding_figure(snap, labels, params, names=names),
        raw_figure(snap, labels, params, names=names),
        logit_figure(snap, labels, params),
        angle_figure(snap, labels, params, names=names),
        curves_figure(history),
        probability_figure(snap, params, n_classes=run.data.num_classes),
        binary_boundary_figure([{"loss": loss, "label": loss}]),
        target_logit_figure([{"loss": loss, "label": loss}, {"loss": "softmax", "label": "s"}]),
    ]
    figures += [fig for _, fig in adaptive_figures(history, snap, labels, params)]
    return [fig for fig in figures if fig is not None]


@pytest.mark.parametrize(("loss", "dim", "extra"), RUNS)
def test_every_live_figure_is_written_as_plotly_writes_it(loss, dim, extra):
    figures = live_figures(loss, dim, extra)
    assert len(figures) >= 7
    typed = 0
    for fig in figures:
        ours = figure_json(fig)
        assert ours == fig.to_json()
        typed += ours.count('"bdata"')
    assert typed > 10  # the arrays did go as typed arrays, not lists


def test_awkward_values_are_written_as_plotly_writes_them():
    columns = np.arange(12, dtype=np.float64).reshape(3, 4)
    traces = [
        {"type": "scatter", "x": np.array([1, 2, 300], dtype=np.int64), "y": np.array([7e9, 1])},
        {"type": "scatter", "x": np.array([1, 70_000], dtype=np.uint64), "uid": "drop me"},
        {"type": "scatter", "x": np.array([2**40, 1], dtype=np.int64), "y": np.array([], "f4")},
        {"type": "heatmap", "z": columns[:, ::2], "customdata": np.array([True, False])},
        {"type": "scatter", "x": np.array([1.5, 2.5], dtype=">f8"), "text": np.array(["a", "b"])},
        {"type": "scatter", "x": [0.5, float("nan"), float("inf")], "y": (np.float32(0.1), 2)},
        {"type": "scatter", "name": "</script><b>x</b>", "marker": {"size": np.int16(3)}},
    ]
    layout = {"xaxis": {"range": np.array([-1.0, 1.0])}, "title": {"text": "a<br>b / c"}}
    fig = fast_figure(traces, layout)
    ours = figure_json(fig)
    assert ours == fig.to_json()
    assert "NaN" not in ours and "Infinity" not in ours and "</" not in ours
    assert json.loads(ours)["data"][3]["z"]["shape"] == "3, 2"


def test_what_it_does_not_write_goes_to_plotly():
    fig = go.Figure(go.Scatter(x=[dt.date(2026, 12, 1), dt.date(2026, 12, 2)], y=[1, 2]))
    assert figure_json(fig) == fig.to_json()


def test_frames_are_written_too():
    frames = [go.Frame(data=[go.Scatter(x=np.arange(3.0) * k)], name=str(k)) for k in range(3)]
    fig = go.Figure(go.Scatter(x=np.arange(3.0)), frames=frames)
    assert figure_json(fig) == fig.to_json()
    assert figure_json(fig).count('"bdata"') == 4
