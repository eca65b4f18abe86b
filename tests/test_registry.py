"""The loss registry and the parameter table: one place per idea, and every reader agrees.

- For every loss, 2-D and 3-D, fresh and briefly trained (real training on the shipped
  subset): the region a figure gives a direction (geometry.region_labels, from the snapshot's
  weights, all sub-centres included) is the with-margin winner the head computes from the same
  weights (head.margin_logits against head.plain_logits) on >= 99.9 % of directions.
- A parameter a loss does not use is checked, then ignored, the same way by the head, the
  RunConfig (and so the snapshot), the URL and the CLI.
- The parameter table's ranges are exactly what the URL, the CLI, the heads and the sliders take.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from marginlab.cli import main
from marginlab.geometry.regions import (
    BAND,
    circle_directions,
    icosphere_face_centres,
    region_labels,
)
from marginlab.lab_state import PARSERS, from_query, run_config
from marginlab.losses.heads import build_head
from marginlab.losses.registry import LOSS_NAMES, REGISTRY, band_width, loss_spec
from marginlab.params import HEAD_PARAMS, PARAMS
from marginlab.training.config import RunConfig, default_config
from marginlab.training.run import Run

pytestmark = pytest.mark.usefixtures("one_thread")

AGREEMENT = 0.999
TRAIN_STEPS = 30


def _directions(dim: int) -> np.ndarray:
    if dim == 2:
        return circle_directions(3600)
    rng = np.random.default_rng(0)
    extra = rng.normal(size=(5000, 3))
    return np.concatenate(
        [icosphere_face_centres(4), extra / np.linalg.norm(extra, axis=1)[:, None]]
    )


def _head_winner(head, directions: np.ndarray) -> np.ndarray:
    """The head's own with-margin winner: class i owns u when its lead (its target logit, margin
    on i, against the strongest rival's logit) is positive; BAND where none is."""
    head = copy.deepcopy(head).double().eval()
    with torch.no_grad():
        lead = head.leads(torch.as_tensor(directions, dtype=torch.float64)).numpy()
    best = lead.argmax(axis=1)
    owned = lead[np.arange(len(best)), best] > 0
    return np.where(owned, best, BAND)


def _figure_regions(head, weights: np.ndarray, directions: np.ndarray) -> np.ndarray:
    return region_labels(
        directions, weights, loss=head.loss, s=head.scale or 1.0, **head.region_keywords()
    )


@pytest.fixture(scope="module")
def trained_runs():
    runs = {}
    for dim in (2, 3):
        for loss in LOSS_NAMES:
            config = default_config(
                loss, dim, margin_warmup_steps=0, probe_size=200, snapshot_every=10_000
            )
            run = Run(config)
            run.step(TRAIN_STEPS)
            runs[loss, dim] = run
    return runs


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_regions_equal_the_heads_winner_on_a_fresh_head(loss, dim):
    torch.manual_seed(3)
    head = build_head(loss, dim, 10)
    directions = _directions(dim)
    weights = head.subcenter_weights().double().numpy()  # (C, K, d): all sub-centres
    agree = np.mean(_figure_regions(head, weights, directions) == _head_winner(head, directions))
    assert agree >= AGREEMENT, f"{loss} {dim}-D: {agree:.4%}"


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_regions_equal_the_heads_winner_after_training(trained_runs, loss, dim):
    run = trained_runs[loss, dim]
    snap = run.snapshot()
    directions = _directions(dim)
    figure = _figure_regions(run.head, snap.region_weights, directions)
    head = _head_winner(run.head, directions)
    agree = np.mean(figure == head)
    assert agree >= AGREEMENT, f"{loss} {dim}-D trained: {agree:.4%}"
    if loss_spec(loss).has_band:
        assert (head == BAND).any(), "a margin loss leaves margin bands"
    # The test is not vacuous: the trained head owns several regions.
    assert len(np.unique(head[head != BAND])) >= 3


def test_subcentres_are_stored_and_drawn_all_k(trained_runs):
    run = trained_runs["subcenter-arcface", 2]
    snap = run.snapshot()
    k = run.head.subcenter_weights().shape[1]
    assert snap.subcenters is not None and snap.subcenters.shape == (10, k, 2)
    np.testing.assert_allclose(snap.weights, run.head.class_weights().numpy(), rtol=1e-6)
    assert snap.region_weights is snap.subcenters
    assert snap.frame(np.zeros(0))["weights"] is snap.subcenters
    assert run.snapshot().subcenters is not None  # and survives: see test_runs for run files
    assert trained_runs["arcface", 2].snapshot().subcenters is None


# ----- an unused parameter: checked, then ignored, everywhere ----------------------------------
UNUSED = [
    (loss, name)
    for loss, spec in REGISTRY.items()
    for name in ("s", "m1", "m2", "m3", "sphere_m", "lam", "k")
    if not spec.uses(name)
]


def _off_default(name: str):
    """A valid value that differs from the table's neutral default."""
    param = PARAMS[name]
    return param.high if param.default != param.high else param.low


@pytest.mark.parametrize(("loss", "name"), UNUSED)
def test_an_unused_parameter_is_ignored_by_head_config_and_url(loss, name):
    value, neutral = _off_default(name), PARAMS[name].default
    head = build_head(loss, 2, 4, **{name: value})
    assert name not in head.params()
    config = default_config(loss, 2, **{name: value})
    assert getattr(config, name) == neutral
    assert getattr(RunConfig(loss=loss, **{name: value}), name) == neutral
    in_url = name in PARSERS  # k is structural: no URL field
    if in_url:
        lab = from_query({"loss": loss, name: str(value)})
        assert lab.notes == () and getattr(run_config(lab), name) == neutral
    # ... and checked first: a bad value is refused (a URL note, never a crash).
    bad = PARAMS[name].high + 1
    with pytest.raises(ValueError, match=name):
        build_head(loss, 2, 4, **{name: bad})
    with pytest.raises(ValueError, match=name):
        default_config(loss, 2, **{name: bad})
    if in_url:
        noted = from_query({"loss": loss, name: str(bad)})
        assert len(noted.notes) == 1 and name in noted.notes[0]


def test_subcenter_m3_from_the_issue_is_ignored_by_cli_snapshot_and_figure(capsys):
    """`train --loss subcenter-arcface --m3 0.1`: the CLI notes it and the run, its snapshot
    and so every replay hold m3 = 0, as the head trains."""
    args = ["train", "--loss", "subcenter-arcface", "--m3", "0.1", "--steps", "0", "--json"]
    assert main([*args, "--probe-size", "50"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["config"]["m3"] == 0.0
    assert "does not use --m3; ignored" in err and err.count("\n") == 1
    run = Run(default_config("subcenter-arcface", 2, m3=0.1, probe_size=50))
    assert run.snapshot().params["m3"] == 0.0 and run.head.spec.m3 == 0.0
    assert main(["train", "--loss", "subcenter-arcface", "--m3", "5", "--steps", "0"]) == 2
    assert "m3" in capsys.readouterr().err


# ----- the one table: every reader takes exactly its range --------------------------------------
NUMERIC = [p for p in PARAMS.values() if p.kind in ("int", "float")]


def _beyond(param):
    step = 1 if param.kind == "int" else max(param.step or 0.0, abs(param.high) * 0.01, 1e-3)
    return param.low - step, param.high + step


def _user(name: str) -> str:
    return next(loss for loss, spec in REGISTRY.items() if spec.uses(name))


PARTNERS = {"l_a": {"u_a": PARAMS["u_a"].high}, "u_a": {"l_a": PARAMS["l_a"].low}}


@pytest.mark.parametrize("param", NUMERIC, ids=lambda p: p.name)
def test_every_reader_takes_the_tables_range(param):
    below, above = _beyond(param)
    ends = (param.low, param.high)
    if param.name in PARSERS and not param.options:
        for end in ends:
            assert PARSERS[param.name](repr(end)) == end
        for wrong in (below, above):
            with pytest.raises(ValueError, match=param.name):
                PARSERS[param.name](repr(wrong))
    if param.name in HEAD_PARAMS:
        loss = _user(param.name)
        partner = PARTNERS.get(param.name, {})  # MagFace needs u_a > l_a
        for end in ends:
            head = build_head(loss, 2, 3, **partner, **{param.name: end})
            assert head.params()[param.name] == end
        for wrong in (below, above):
            with pytest.raises(ValueError, match=param.name):
                build_head(loss, 2, 3, **{param.name: wrong})
    if param.flag:
        from marginlab.cli import build_parser

        parser = build_parser()
        text = str(int(param.high)) if param.kind == "int" else repr(param.high)
        parsed = parser.parse_args(["train", param.flag, text])
        assert getattr(parsed, param.name) == param.high
        for wrong in (below, above):
            assert main(["train", param.flag, repr(wrong), "--steps", "0"]) == 2


def test_the_lab_offers_only_what_the_table_allows():
    dim = PARAMS["dim"]
    assert set(dim.options) <= set(range(int(dim.low), int(dim.high) + 1))
    assert all(PARAMS["lr"].low <= r <= PARAMS["lr"].high for r in PARAMS["lr"].options)
    assert from_query({"dim": "5"}).notes  # the lab draws circles and spheres only
    for param in NUMERIC:
        assert param.low < param.high and param.low <= param.default <= param.high, param.name
        assert param.label and param.help


def test_sliders_are_built_from_the_table():
    from ui import controls

    calls = []

    class Recorder:
        def __getattr__(self, widget):
            return lambda *args, **kwargs: calls.append((widget, args, kwargs))

    for loss in LOSS_NAMES:
        names = loss_spec(loss).tunable
        resolved = {**loss_spec(loss).defaults(2), "lambda_schedule": False}
        controls.margin_controls(
            from_query({"loss": loss}), resolved, names=names, where=Recorder()
        )
    sliders = {args[0]: args[1:3] for widget, args, _ in calls if widget == "slider"}
    for name in controls.SLIDER_PARAMS:
        param = PARAMS[name]
        assert sliders[param.label] == (param.low, param.high), name


# ----- the registry itself ---------------------------------------------------------------------
def test_every_loss_has_one_complete_entry():
    for name, spec in REGISTRY.items():
        assert spec.name == name and spec.label and spec.paper
        for dim in (2, 3, 512):
            defaults = spec.defaults(dim)
            assert set(defaults) == set(spec.used)
            build_head(name, dim, 4, **defaults)  # every default is in the table's range
        default_config(name, 2, **{k: v for k, v in spec.paper_preset.items()})


def test_requested_margin_is_an_angle_or_none():
    arcface, cosface, combined = REGISTRY["arcface"], REGISTRY["cosface"], REGISTRY["combined"]
    assert arcface.requested_margin({"m2": 0.3}) == 0.3
    assert cosface.requested_margin({"m3": 0.1}) is None  # no angle without a spacing
    spacing = math.radians(36.0)
    # CosFace's band on the circle: 2·asin(m / (2 sin(Δ/2))) (derived from cos θ − m = cos(Δ − θ)).
    expected = 2 * math.asin(0.1 / (2 * math.sin(spacing / 2)))
    assert cosface.requested_margin({"m3": 0.1}, spacing) == pytest.approx(expected, abs=1e-5)
    cm1 = {"m1": 1.0, "m2": 0.3, "m3": 0.2}
    width = combined.requested_margin(cm1, math.radians(60.0))
    assert width is not None and width != pytest.approx(0.3, abs=0.01)  # not just m2
    assert math.degrees(width) == pytest.approx(35.64, abs=0.02)
    assert band_width(arcface, {"m2": 0.2}, spacing) == pytest.approx(0.2, abs=1e-6)
    assert REGISTRY["normface"].requested_margin({"s": 30.0}, spacing) is None


def test_band_width_is_what_region_labels_draws_on_the_circle():
    """The requested margin the figure writes is the grey band region_labels paints."""
    spacing = math.radians(36.0)
    weights = np.array([[1.0, 0.0], [math.cos(spacing), math.sin(spacing)]])
    phi = np.linspace(0, spacing, 36001)
    directions = np.stack([np.cos(phi), np.sin(phi)], axis=1)
    for loss, values in (("cosface", {"m3": 0.1}), ("combined", {"m2": 0.1, "m3": 0.05}),
                         ("sphereface", {"sphere_m": 2, "lam": 1.0})):  # fmt: skip
        spec = REGISTRY[loss]
        labels = region_labels(directions, weights, loss=loss, s=16.0, **values)
        painted = np.mean(labels == BAND) * spacing
        assert painted == pytest.approx(band_width(spec, values, spacing), abs=1e-3), loss


def test_no_code_outside_losses_branches_on_a_loss_name():
    """Outside losses/ (and the lessons' data), a loss name appears only as data: a default
    line-up or a preset, never in a comparison."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "app"
    names = "|".join(re.escape(n) for n in LOSS_NAMES)
    branch = re.compile(
        rf"""(==|!=|\bin\b)\s*\(?\s*["']({names})["']|["']({names})["']\s*(==|!=)"""
    )
    offenders = []
    for path in root.rglob("*.py"):
        if "losses" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if branch.search(line):
                offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
