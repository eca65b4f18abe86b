"""Figures build for every loss, carry the expected traces, agree with the margin function,
contain no NaN at extreme settings, and export to offline HTML."""

from __future__ import annotations

import math
import re

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from margin_params import FIXED_MARGINS
from marginlab.figures import (
    binary_boundary_figure,
    circle_figure,
    compare_views,
    figure_to_html,
    lead_histogram_figure,
    pair_angle_figure,
    projection_figure,
    raw_feature_figure,
    replay_figure,
    replay_html,
    small_multiples,
    sphere_figure,
    target_logit_figure,
    target_probability_figure,
    training_curves_figure,
)
from marginlab.figures.parts import BAND_NAME, MISCLASSIFIED_NAME
from marginlab.figures.style import at_chosen_norm
from marginlab.figures.training_curves import STAT_STYLE
from marginlab.geometry.regions import PLAIN_ARGMAX, REGION_LOSSES, icosphere, sphere_face_labels
from marginlab.losses.margins import target_logit

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: a second thread only waits


C = 4
PARAMS = {
    **FIXED_MARGINS,
    "cosface": {"m3": 0.2},
    "arcface": {"m2": 0.3},
    # The post-2020 family: the head's values and running state, as margin_of gives them.
    "adaface": {"adaptive": {"m": 0.3, "h": 0.333, "batch_mean": 1.5, "batch_std": 0.5}},
    "magface": {"adaptive": {"l_a": 0.5, "u_a": 3.0, "l_m": 0.1, "u_m": 0.4, "policy": "easy"}},
    "elasticface-arc": {"m2": 0.3, "adaptive": {"m2": 0.3, "sigma": 0.05}},
    "elasticface-cos": {"m3": 0.2, "adaptive": {"m3": 0.2, "sigma": 0.05}},
    "curricularface": {"m2": 0.3, "adaptive": {"m2": 0.3, "t": 0.4}},
    "adacos": {"adaptive": {"running_s": 12.0}},
}


def _data(dim: int, n: int = 80, seed: int = 0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(C, dim))
    y = rng.integers(0, C, n)
    x = w[y] + 0.4 * rng.normal(size=(n, dim))
    return x, y, w


def _arrays(obj):
    """Every numeric array/list inside a figure's JSON (data, layout and frames)."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fiu":
            yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _arrays(v)
    elif isinstance(obj, (list, tuple)):
        if obj and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in obj):
            yield np.asarray(obj, dtype=np.float64)
        else:
            for v in obj:
                yield from _arrays(v)
    elif isinstance(obj, float):
        yield np.asarray([obj])


def assert_clean(fig: go.Figure):
    """Valid for plotly (see assert_valid) and free of NaN/Inf in every array."""
    assert_valid(fig)
    for arr in _arrays(fig.to_plotly_json()):
        assert np.isfinite(arr).all(), "NaN/Inf in a figure array"


def assert_valid(fig: go.Figure):
    """The fast builders skip plotly.py's validation at run time; validate here instead."""
    go.Figure(fig.to_dict())  # raises ValueError on an unknown property or a bad value


def assert_float32_points(fig: go.Figure):
    """Point and mesh coordinates travel as float32 numpy arrays (base64), never lists."""
    for trace in fig.data:
        keys = {"scatter": "xy", "scattergl": "xy", "scatter3d": "xyz", "mesh3d": "xyz"}
        for key in keys.get(trace.type, ""):
            value = getattr(trace, key)
            assert isinstance(value, np.ndarray) and value.dtype == np.float32, (trace.name, key)


def _weights_for(loss, w):
    # sub-centre ArcFace: K = 2 sub-centres per class
    return np.stack([w, w + 0.3], axis=1) if loss == "subcenter-arcface" else w


@pytest.mark.parametrize("loss", REGION_LOSSES)
def test_circle_figure_for_every_loss(loss):
    x, y, w = _data(2)
    fig = circle_figure(x, y, _weights_for(loss, w), loss=loss, s=20.0, **PARAMS[loss])
    names = [t.name for t in fig.data]
    halo = loss.startswith("elasticface")  # the band one σ wider (ElasticFace's spread)
    assert len(fig.data) == 3 * C + 3 + halo
    assert [f"class {k}" for k in range(C)] == [n for n in names if re.fullmatch(r"class \d", n)]
    assert MISCLASSIFIED_NAME in names and BAND_NAME in names
    band = fig.data[names.index(BAND_NAME)]
    assert band.showlegend == (loss not in PLAIN_ARGMAX)
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.uirevision
    assert fig.layout.title.text and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    assert_float32_points(fig)
    assert_clean(fig)


@pytest.mark.parametrize("loss", REGION_LOSSES)
def test_sphere_figure_for_every_loss(loss):
    x, y, w = _data(3)
    weights = _weights_for(loss, w)
    fig = sphere_figure(x, y, weights, loss=loss, s=20.0, **PARAMS[loss])
    names = [t.name for t in fig.data]
    band = 0 if loss in PLAIN_ARGMAX else 1
    assert len(fig.data) == 2 * C + 2 + band
    assert (BAND_NAME in names) == bool(band) and MISCLASSIFIED_NAME in names
    mesh = fig.data[0]
    assert mesh.type == "mesh3d" and mesh.intensitymode == "cell"
    _, faces = icosphere(4)
    assert len(mesh.intensity) == len(faces) == len(mesh.i)
    # The painted faces are exactly region_labels at the face centres (+1: 0 is the band).
    drawn, _ = at_chosen_norm(PARAMS[loss], loss, x)  # AdaFace, MagFace: at the median ‖x‖
    expected = sphere_face_labels(weights, loss=loss, s=20.0, **drawn) + 1
    np.testing.assert_array_equal(mesh.intensity, expected.astype(np.float32))
    assert fig.layout.scene.aspectmode == "cube" and fig.layout.scene.uirevision
    assert fig.layout.uirevision
    assert_float32_points(fig)
    assert_clean(fig)


def test_sphere_refines_mesh_for_thin_bands():
    x, y, w = _data(3)
    fig = sphere_figure(x, y, w, loss="arcface", s=30.0, m2=0.05)
    assert len(fig.data[0].intensity) == 20 * 4**5


@pytest.mark.parametrize("loss", ["softmax", "normface", "arcface", "cosface", "sphereface"])
def test_raw_feature_figure(loss):
    x, y, w = _data(2)
    bias = np.array([0.5, -0.5, 0.0, 1.0]) if loss == "softmax" else None
    fig = raw_feature_figure(x, y, w, loss=loss, s=20.0, bias=bias, **PARAMS[loss])
    assert fig.data[0].type == "heatmap"
    z = fig.data[0].z  # the region of each grid cell + 1 (0: a margin band), a byte each
    assert isinstance(z, np.ndarray) and z.dtype == np.uint8 and z.shape == (160, 160)
    assert set(np.unique(z)) <= set(range(C + 1)) and len(np.unique(z)) > 1
    assert len(fig.data) == 2 * C + 2 + (loss not in PLAIN_ARGMAX)
    assert "bias" in fig.layout.title.subtitle.text or bias is None
    assert_clean(fig)


def test_scattergl_above_webgl_above_points():
    """The probe's 1,000 points (and more) draw as WebGL, a small face set's as SVG."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6000, 2)), rng.integers(0, C, 6000)
    for n in (1000, 6000):
        fig = circle_figure(x[:n], y[:n], _data(2)[2], loss="arcface", s=20.0, m2=0.2)
        assert {t.type for t in fig.data if t.name.startswith("class ")} == {"scattergl"}
    small = circle_figure(x[:100], y[:100], _data(2)[2], loss="arcface", s=20.0, m2=0.2)
    assert {t.type for t in small.data if t.name.startswith("class ")} == {"scatter"}


def _trace(fig, name):
    (trace,) = [t for t in fig.data if t.name == name]
    return trace


def test_target_logit_figure_reproduces_arcface_fig4b():
    rng = np.random.default_rng(0)
    fig = target_logit_figure({"loss": "arcface", "m2": 0.5}, theta_y=rng.uniform(0, 2, 100))
    current = _trace(fig, "ArcFace (m = 0.5 rad)")
    at60 = current.y[np.flatnonzero(current.x == 60.0)[0]]
    assert at60 == pytest.approx(0.0236, abs=5e-5)
    # The paper's reference curves at 60° (LOSSES.md, ArcFace Fig. 4b).
    paper = {
        "Softmax": 0.5,
        "SphereFace (m=4, λ=5)": 0.1667,
        "SphereFace (m1=1.35)": 0.1564,
        "ArcFace (m=0.5)": 0.0236,
        "CosFace (m=0.35)": 0.15,
        "CM1 (1, 0.3, 0.2)": 0.0217,
        "CM2 (0.9, 0.4, 0.15)": 0.0763,
    }
    for label, value in paper.items():
        trace = _trace(fig, f"paper: {label}")
        assert trace.y[np.flatnonzero(trace.x == 60.0)[0]] == pytest.approx(value, abs=1e-4)
    assert any(t.type == "bar" for t in fig.data)  # θ_y histogram, on its own axis
    assert current.yaxis == "y2" and fig.layout.yaxis2.overlaying == "y"
    assert_clean(fig)


def test_binary_boundaries_follow_the_paper_table():
    fig = binary_boundary_figure()
    boundaries = [t for t in fig.data if t.name == "boundary of class 1"]
    assert len(boundaries) == 5
    x, y = (np.asarray(a, dtype=np.float64) for a in (boundaries[4].x, boundaries[4].y))
    inner = (x >= 0.5) & (x <= 180 - math.degrees(0.5) - 1)  # θ1 = 0 sits on the cos clamp
    # ArcFace: cos(θ1 + m) = cos θ2, a constant angular gap of m.
    np.testing.assert_allclose(y[inner] - x[inner], math.degrees(0.5), atol=1e-3)
    # CosFace: cos θ1 − m = cos θ2.
    x, y = (np.asarray(a, dtype=np.float64) for a in (boundaries[3].x, boundaries[3].y))
    ok = np.cos(np.radians(x)) - 0.35 > -1
    np.testing.assert_allclose(
        np.cos(np.radians(y[ok])), np.cos(np.radians(x[ok])) - 0.35, atol=1e-5
    )
    # NormFace: θ1 = θ2.
    np.testing.assert_allclose(boundaries[1].y, boundaries[1].x, atol=1e-3)
    assert_clean(fig)


def test_binary_boundary_region_matches_margin_function():
    spec = {"loss": "sphereface", "sphere_m": 4}
    fig = binary_boundary_figure([spec])
    (b,) = [t for t in fig.data if t.name == "boundary of class 1"]
    t1 = np.radians(np.asarray(b.x, dtype=np.float64))
    psi = target_logit(torch.as_tensor(np.cos(t1)), loss="sphereface", sphere_m=4).numpy()
    visible = psi > -1
    np.testing.assert_allclose(
        np.cos(np.radians(np.asarray(b.y, dtype=np.float64)[visible])), psi[visible], atol=1e-5
    )


@pytest.mark.parametrize("s", [0.1, 30.0, 256.0])
def test_target_probability_figure_is_finite_and_monotone(s):
    fig = target_probability_figure("arcface", s, m2=0.5)
    margin, plain = fig.data
    assert_clean(fig)
    assert np.all(np.diff(margin.y) <= 1e-6) and np.all(margin.y <= plain.y + 1e-6)
    assert "9 class weights" in fig.layout.title.subtitle.text


def test_lead_histogram_marks_the_requested_margin_and_counts_every_sample():
    """Leads split into margin met / own weight nearest / another weight nearer; the line at
    m sits where the met samples begin (lead ≥ m), whatever the layout of the weights."""
    x, y, w = _data(2)
    fig = lead_histogram_figure(x, y, w, loss="arcface", m2=0.3)
    met, band, wrong = fig.data
    assert [t.type for t in fig.data] == ["bar", "bar", "bar"]
    assert fig.layout.barmode == "stack"
    assert sum(np.sum(t.y) for t in fig.data) == len(y)
    centres = np.asarray(met.x)
    assert np.all(centres[np.asarray(met.y) > 0] >= 17.2 - 2.5)  # bins holding a lead ≥ m
    assert np.all(centres[np.asarray(wrong.y) > 0] < 0)  # lead ≤ 0: bins left of 0° (an edge)
    m_line = [s for s in fig.layout.shapes if abs(s.x0 - math.degrees(0.3)) < 1e-9]
    assert len(m_line) == 1
    subtitle = fig.layout.title.subtitle.text
    assert "Median" in subtitle and "lead ≥ m = 17.2°" in subtitle and "lowest class" in subtitle
    assert "worst class" not in subtitle
    assert_clean(fig)


def test_lead_histogram_without_an_angular_margin_states_the_region_test():
    x, y, w = _data(2)
    fig = lead_histogram_figure(x, y, w, loss="cosface", m3=0.2, names=list("abcd"))
    subtitle = fig.layout.title.subtitle.text
    assert "with-margin region" in subtitle and "requested m" not in str(fig.layout.annotations)
    assert len(fig.layout.shapes) == 1  # only the median line: CosFace's m is not an angle


EXTREMES = [
    {"loss": "arcface", "s": 0.1, "m2": math.pi},
    {"loss": "arcface", "s": 256.0, "m2": math.pi},
    {"loss": "cosface", "s": 256.0, "m3": 2.0},
    {"loss": "combined", "s": 0.1, "m1": 3.0, "m2": math.pi, "m3": 1.0},
    {"loss": "sphereface", "s": 256.0, "sphere_m": 8, "lam": 0.0},
]


@pytest.mark.parametrize("params", EXTREMES)
def test_no_nan_at_extreme_parameters_and_zero_features(params):
    params = dict(params)
    loss, s = params.pop("loss"), params.pop("s")
    for dim, build in ((2, circle_figure), (2, raw_feature_figure), (3, sphere_figure)):
        _, y, w = _data(dim)
        extra = {"subdivisions": 3} if build is sphere_figure else {}
        for x in (np.zeros((len(y), dim)), _data(dim)[0] * 1e6):
            assert_clean(build(x, y, w, loss=loss, s=s, **extra, **params))
        assert_clean(lead_histogram_figure(np.zeros((len(y), dim)), y, w, loss=loss, **params))
    assert_clean(target_probability_figure(loss, s, **params))
    assert_clean(target_logit_figure({"loss": loss, **params}, theta_y=np.zeros(5)))
    assert_clean(binary_boundary_figure([{"loss": loss, **params}]))


def test_projection_and_pair_angles_for_high_dimensions():
    x, y, w = _data(8, n=200)
    fig = projection_figure(x, y, w, loss="arcface", m2=0.3)
    assert "projection" in fig.layout.title.text.lower()
    assert len(fig.data) == 2 * C + 2 and fig.data[0].type == "mesh3d"
    assert_clean(fig)
    assert_clean(projection_figure(np.zeros((10, 8)), np.zeros(10, dtype=int), w, loss="normface"))
    pairs = pair_angle_figure(x, y, max_pairs=500)
    assert len(pairs.data) == 2 and "random sample" in pairs.layout.title.subtitle.text
    assert_clean(pairs)


def test_training_curves_from_rows_columns_and_several_runs():
    steps = np.arange(0, 50, 10)
    cols = {
        "step": steps,
        "loss": [2.0, 1.0, np.nan, np.nan, np.nan],
        "train_acc": [0.1, 0.5, 0.6, 0.7, 0.8],
        "test_acc": [0.1, 0.4, 0.5, 0.6, 0.7],
        "w_ec": [1.0, 0.8, 0.6, 0.4, 0.2],
        "w_inter": [1.1] * 5,
        "intra": [0.5] * 5,
        "inter": [1.0] * 5,
    }
    fig = training_curves_figure(cols)
    assert len(fig.data) == 1 + 2 + 4
    assert "NaN" in fig.layout.title.subtitle.text and "step 20" in fig.layout.title.subtitle.text
    assert_clean(fig)
    rows = [{k: v[i] for k, v in cols.items()} for i in range(5)]
    assert len(training_curves_figure(rows).data) == 7
    both = training_curves_figure({"ArcFace": cols, "CosFace": rows}, colors={"CosFace": "#2ca02c"})
    drawn = [t for t in both.data if len(t.x)]
    assert len(drawn) == 14 and any(t.name.startswith("CosFace: ") for t in drawn)
    assert {t.line.color for t in drawn if t.name.startswith("CosFace: ")} == {"#2ca02c"}
    # The legend names each run once and each line style once, not runs × quantities.
    legend = [t.name for t in both.data if t.showlegend is not False]
    assert legend == ["ArcFace", "CosFace", "train accuracy", "test accuracy"] + [
        label for label, _ in STAT_STYLE.values()
    ]


def test_small_multiples_share_colours_axes_and_one_legend():
    x, y, w = _data(2)
    runs = [
        {"features": x, "labels": y, "weights": w, "loss": loss, "s": 20.0, **PARAMS[loss]}
        for loss in ("softmax", "normface", "sphereface", "cosface", "arcface", "center")
    ]
    fig = compare_views("circle", runs, cols=3)
    assert len(fig.data) == 6 * (3 * C + 3)
    shown = [t.name for t in fig.data if t.showlegend is not False]
    assert shown.count("class 0") == 1
    colours = {t.marker.color for t in fig.data if t.name == "class 2"}
    assert len(colours) == 1  # same class, same colour in every panel
    assert fig.layout.yaxis2.scaleanchor == "x2"
    assert [a.text for a in fig.layout.annotations][:2] == ["Softmax", "NormFace (s = 20)"]

    x3, y3, w3 = _data(3)
    spheres = [sphere_figure(x3, y3, w3, loss="arcface", s=20.0, m2=m) for m in (0.1, 0.3)]
    grid = small_multiples(spheres, ["m = 0.1", "m = 0.3"], cols=2)
    assert grid.layout.scene.aspectmode == "cube" and grid.layout.scene2.aspectmode == "cube"
    assert {t.scene for t in grid.data} == {"scene", "scene2"}
    assert_clean(grid)


def test_figure_to_html_is_self_contained(tmp_path):
    x, y, w = _data(2)
    path = figure_to_html(
        circle_figure(x, y, w, loss="arcface", s=20.0, m2=0.2), tmp_path / "c.html"
    )
    html = path.read_text(encoding="utf-8")
    assert len(html) > 3_000_000 and "Plotly.newPlot" in html  # the bundle is embedded
    assert not re.search(r"<script[^>]+src=[\"']https?:", html)


@pytest.mark.parametrize("dim", [2, 3, 6])
def test_replay_has_frames_slider_and_play_button(dim, tmp_path):
    x, y, w = _data(dim)
    snaps = [
        {"step": 10 * k, "features": x * (k + 1), "labels": y, "weights": w, "loss": "arcface",
         "s": 20.0, "m2": 0.1 * k}
        for k in range(4)
    ]  # fmt: skip
    fig = replay_figure(snaps)
    assert len(fig.frames) == 4 and [f.name for f in fig.frames] == ["0", "10", "20", "30"]
    assert len(fig.layout.sliders[0].steps) == 4
    assert fig.layout.updatemenus[0].buttons[0].method == "animate"
    assert all(len(f.data) == len(fig.data) for f in fig.frames)
    assert_clean(fig)
    if dim == 3:  # the mesh is sent once; frames carry only its face colours
        assert fig.frames[1].data[0].x is None and fig.frames[1].data[0].intensity is not None
    html = replay_html(snaps, tmp_path / "replay.html", max_frames=3)
    assert "addFrames" in html and not re.search(r"<script[^>]+src=[\"']https?:", html)
    assert (tmp_path / "replay.html").exists()


def test_empty_inputs_build_and_wrong_dimensions_are_explained():
    none = np.zeros(0, dtype=int)
    assert_clean(circle_figure(np.zeros((0, 2)), none, np.eye(2), loss="arcface", s=10.0, m2=0.2))
    assert_clean(sphere_figure(np.zeros((0, 3)), none, np.eye(3), loss="cosface", s=10.0, m3=0.2))
    assert_clean(training_curves_figure({"step": []}))
    with pytest.raises(ValueError, match="3-D features"):
        sphere_figure(np.zeros((4, 2)), np.zeros(4, dtype=int), np.eye(2), loss="arcface", s=1.0)


# --------------------------------------------------------------------------- captions


def test_raw_view_says_what_it_shades():
    x, y, w = _data(2)
    margin = raw_feature_figure(x, y, w, loss="arcface", s=16.0, m2=0.3)
    text = margin.layout.title.subtitle.text
    assert "WITH margin" in text and "grey: margin bands" in text
    assert "Shaded: the predicted class" not in text
    plain = raw_feature_figure(x, y, w, loss="softmax").layout.title.subtitle.text
    assert "Shaded: the predicted class" in plain


def test_training_curves_do_not_call_w_ec_tightness():
    text = training_curves_figure({"step": [0, 1], "w_ec": [0.1, 0.2]}).layout.title
    subtitle = text.subtitle.text
    assert "smaller Intra = tighter classes" in subtitle
    assert "W-EC = weights better aligned" in subtitle and "W-EC = tighter" not in subtitle


def test_sphereface_probability_uses_the_runs_feature_norm_and_says_so():
    """A-Softmax scales by ‖x‖: at ‖x‖ = 1 with λ = 5 and 10 classes the true class never gets
    past p = e / (e + 9) ≈ 0.23; at the run's median ‖x‖ it can."""
    unit = target_probability_figure("sphereface", 16.0, sphere_m=4, lam=5.0)
    assert max(unit.data[0].y) == pytest.approx(math.e / (math.e + 9), abs=2e-3)
    assert "‖x‖ = 1 (no run)" in unit.layout.title.subtitle.text
    assert "never passes 0.23" in unit.layout.title.subtitle.text
    run = target_probability_figure("sphereface", 16.0, feature_norm=20.0, sphere_m=4, lam=5.0)
    assert max(run.data[0].y) > 0.99
    assert "median ‖x‖ = 20" in run.layout.title.subtitle.text
    arcface = target_probability_figure("arcface", 16.0, m2=0.3)
    assert "‖x‖" not in arcface.layout.title.subtitle.text


def test_the_template_never_measures_tick_labels_to_hide_them():
    """base_layout's template draws tick labels as they are (plotly.js's default measures each
    one after every draw to hide those past the figure's edge); the rest is plotly_white."""
    import plotly.io as pio

    from marginlab.figures.style import base_layout

    fig = go.Figure(layout=base_layout("a title"))
    axes = fig.layout.template.layout
    assert axes.xaxis.ticklabeloverflow == "allow" and axes.yaxis.ticklabeloverflow == "allow"
    white = pio.templates["plotly_white"].layout
    assert axes.xaxis.gridcolor == white.xaxis.gridcolor
    assert axes.paper_bgcolor == white.paper_bgcolor
