"""Small things a class would notice: words that match the controls and the data, one curve
where there is one, a note instead of empty axes, a replay drawn with the margin asked for."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from marginlab.data.datasets import load_mnist_toy
from marginlab.figures import replay_figure, target_probability_figure, training_curves_figure
from marginlab.figures.export import export_name
from marginlab.lessons.parser import LESSONS_DIR, load_lessons
from marginlab.params import PARAMS

APP = Path(__file__).resolve().parents[1] / "app"


def test_no_margin_draws_one_probability_curve_and_a_margin_two():
    assert len(target_probability_figure("normface", 16.0).data) == 1
    assert len(target_probability_figure("arcface", 16.0, m2=0.2).data) == 2


def test_training_curves_say_when_nothing_has_trained_yet():
    def notes(fig):
        return [a.text for a in fig.layout.annotations if "No training yet" in a.text]

    empty = training_curves_figure([{"step": 0, "loss": 0.0, "test_acc": 0.1}])
    assert notes(empty) and empty.layout.xaxis.visible is False  # no empty axes
    trained = training_curves_figure({"step": [0, 5], "loss": [2.0, 1.0]})
    assert not notes(trained) and trained.layout.xaxis.visible is not False


def test_about_counts_the_shipped_subset_from_its_file():
    toy = load_mnist_toy()
    at = AppTest.from_file(str(APP / "views" / "about.py"), default_timeout=60).run()
    text = " ".join(m.value for m in at.markdown)
    total = len(toy.train_labels) + len(toy.test_labels)
    assert f"{total:,} images" in text and f"{len(toy.test_labels):,} to test" in text
    assert "10,000" not in text


def test_lessons_name_the_sliders_by_the_labels_the_sidebar_shows():
    labels = {param.label for param in PARAMS.values()}
    lessons, errors = load_lessons(LESSONS_DIR)
    assert not errors
    named = []
    for lesson in lessons:
        # "the slider **X**" and "the sidebar's **X**" must be a real control's label.
        for text in re.findall(
            r"(?:slider|sidebar's)\s+\*\*([^*]+)\*\*", lesson.sections["Try this"]
        ):
            assert text in labels, f"lesson {lesson.order} names a slider {text!r}"
            named.append(text)
    assert PARAMS["m2"].label in named  # lesson 3's margin slider


def test_the_replay_draws_every_frame_with_the_margin_asked_for():
    rng = np.random.default_rng(0)
    weights = np.stack([np.cos(np.arange(4) * np.pi / 2), np.sin(np.arange(4) * np.pi / 2)], 1)
    labels = rng.integers(0, 4, 40)
    features = weights[labels] + 0.2 * rng.normal(size=(40, 2))
    # Early snapshots during the margin warm-up carry a tiny margin.
    snaps = [
        {"step": step, "features": features, "labels": labels, "weights": weights,
         "loss": "arcface", "s": 16.0, "m2": 0.002 * step}
        for step in (0, 5)
    ]  # fmt: skip

    def band_points(fig, frame):
        index = next(i for i, t in enumerate(fig.data) if t.name.startswith("margin band"))
        return len(fig.frames[frame].data[index].x)

    warm = replay_figure(snaps)
    asked = replay_figure(snaps, requested={"loss": "arcface", "s": 16.0, "m2": 0.3})
    assert band_points(asked, 0) > band_points(warm, 0)  # the bands are there from frame one
    assert asked.layout.legend.orientation == "v"  # beside the plot: clear of the controls


def test_export_names_say_page_loss_step_and_kind():
    name = export_name("lab", "SphereFace (A-Softmax)", 300, "replay")
    assert name == "marginlab-lab-sphereface-a-softmax-step300-replay.html"
    assert export_name("compare", "ArcFace", 300, "view") != export_name(
        "compare", "ArcFace", 300, "replay"
    )


def test_the_lab_offers_a_view_and_a_replay_named_by_loss_and_step():
    at = AppTest.from_file(str(APP / "views" / "lab.py"), default_timeout=240).run()
    [step] = [b for b in at.button if b.label == "Step"]
    step.click().run()
    at.button(key="lab_prepare_exports").click().run()
    assert not at.exception
    labels = [element.proto.label for element in at.get("download_button")]
    assert "ArcFace: view at step 5 (HTML)" in labels
    assert "ArcFace: replay to step 5 (HTML)" in labels


def test_a_lesson_without_pretraining_does_not_say_its_check_trains_0_steps():
    at = AppTest.from_file(str(APP / "views" / "lessons.py"), default_timeout=300)
    at.query_params["lesson"] = "07-digits-to-faces"
    at.run()
    checks = [c.value for c in at.caption if c.value.startswith("The check")]
    assert checks and "0 steps" not in checks[0] and "experiment the claim describes" in checks[0]


def test_the_closed_set_says_how_few_faces_its_accuracy_is_measured_on(
    shared_data_dir, monkeypatch
):
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(shared_data_dir / "scikit_learn_data"))
    at = AppTest.from_file(str(APP / "views" / "faces.py"), default_timeout=300).run()
    assert not at.exception
    notes = [c.value for c in at.caption if "held-out images" in c.value]
    assert notes and "16 held-out images of 8 people" in notes[0] and "6 %" in notes[0]


def test_the_scrubber_is_valued_in_training_steps_and_its_slot_keeps_its_height():
    at = AppTest.from_file(str(APP / "views" / "lab.py"), default_timeout=240).run()
    assert at.metric[1].label == "training loss" and at.metric[1].value == "—"  # not 0.000
    scrubbers = [w for w in at.select_slider if w.key == "lab_scrub"]
    assert not scrubbers  # one snapshot: nothing to replay yet
    [step] = [b for b in at.button if b.label == "Step"]
    step.click().run()
    step.click().run()
    assert not at.exception
    scrub = at.select_slider(key="lab_scrub")
    assert "training step" in scrub.label
    steps = [snap.step for snap in at.session_state["lab"].runs[0].history]
    assert list(scrub.options) == [str(s) for s in steps] and scrub.value == steps[-1]
    scrub.set_value(steps[0]).run()
    assert not at.exception
    assert at.metric[0].value == f"{steps[0]:,}"  # the strip shows the step picked
    scrub.set_value(steps[-1]).run()
    assert at.metric[1].value != "—"  # a trained snapshot has its loss
