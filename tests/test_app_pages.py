"""Streamlit AppTest: every page renders, every control works, the URL carries the setup."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_figures import live_figures

APP = Path(__file__).resolve().parents[1] / "app"
TIMEOUT = 240  # AppTest's 3 s default is far too short once torch trains in the script


def page(name: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(APP / name), default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


@pytest.mark.parametrize(
    "name",
    [
        "main.py",
        "views/lab.py",
        "views/compare.py",
        "views/formulas.py",
        "views/phase_map.py",
        "views/about.py",
    ],
)
def test_page_renders_without_exception(name):
    at = page(name)
    assert not at.exception, at.exception


def test_lab_play_step_pause_reset():
    at = page("views/lab.py")
    live = at.session_state["lab"]
    assert live.steps == 0
    buttons = {b.label: b for b in at.button}
    buttons["Step"].click().run()
    assert not at.exception
    assert at.session_state["lab"].steps == 5  # one chunk = "steps per update"
    buttons = {b.label: b for b in at.button}
    buttons["Play"].click().run()
    assert at.session_state["lab"].playing
    assert "Pause" in [b.label for b in at.button]
    {b.label: b for b in at.button}["Pause"].click().run()
    assert not at.session_state["lab"].playing
    {b.label: b for b in at.button}["Reset"].click().run()
    assert at.session_state["lab"].steps == 0
    assert not at.exception


def test_lab_shows_leads_and_table3_on_labelled_sets():
    """The strip's measured margin is the median lead and "margin met" sits beside it; Table 3
    is measured on the training images and the held-out images (the probe), each labelled."""
    at = page("views/lab.py")
    {b.label: b for b in at.button}["Step"].click().run()
    assert not at.exception
    labels = [metric.label for metric in at.metric]
    assert labels[:6] == [
        "step", "training loss", "test accuracy", "Intra / Inter", "measured margin", "margin met",
    ]  # fmt: skip
    met = next(metric for metric in at.metric if metric.label == "margin met")
    assert met.value.endswith("%") and met.delta.startswith("lowest class ")
    [table] = [frame.value for frame in at.dataframe if "set" in frame.value.columns]
    assert list(table["set"]) == ["training images", "held-out images of the training classes"]
    assert "1,000 of the" in table["note"][0] and "test images" in table["note"][1]
    captions = " ".join(caption.value for caption in at.caption)
    assert "aligned" in captions and "Faces page" in captions
    [row] = [frame.value for frame in at.dataframe if "median lead °" in frame.value.columns]
    assert "worst class" not in " ".join(row.columns)


def test_margin_slider_redraws_the_picture_and_reaches_the_run():
    at = page("views/lab.py")
    before = live_figures(at)["lab_view"]
    at.slider(key="control_m2").set_value(0.5).run()
    assert not at.exception
    assert at.session_state["lab"].runs[0].config.m2 == 0.5
    assert at.query_params["m2"] == "0.5"
    after = live_figures(at)["lab_view"]
    assert json.dumps(before) != json.dumps(after)  # bands redrawn without training


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("control_s", 30.0, "s"),
        ("control_speed", 10, "speed"),
    ],
)
def test_each_slider_writes_the_config(key, value, field):
    at = page("views/lab.py")
    at.slider(key=key).set_value(value).run()
    assert not at.exception
    assert getattr(at.session_state["lab_config"], field) == value


def test_loss_dimension_and_seed_start_a_new_run():
    at = page("views/lab.py")
    first = at.session_state["lab"]
    at.selectbox(key="control_loss").set_value("cosface").run()
    at.radio(key="control_dim").set_value(3).run()
    at.number_input(key="control_seed").set_value(4).run()
    assert not at.exception
    run = at.session_state["lab"].runs[0]
    assert at.session_state["lab"] is not first
    assert (run.config.loss, run.config.dim, run.config.seed) == ("cosface", 3, 4)
    assert "lab_view" in live_figures(at)


def test_url_parameters_load_that_configuration():
    at = page("views/lab.py", {"loss": "cosface", "dim": "3", "s": "24", "m3": "0.2", "seed": "3"})
    assert not at.exception
    config = at.session_state["lab"].runs[0].config
    assert (config.loss, config.dim, config.s, config.m3, config.seed) == (
        "cosface",
        3,
        24.0,
        0.2,
        3,
    )


def test_bad_query_values_fall_back_with_a_note():
    at = page("views/lab.py", {"loss": "<b>hack</b>", "dim": "0", "s": "nan"})
    assert not at.exception
    config = at.session_state["lab"].runs[0].config
    assert (config.loss, config.dim) == ("arcface", 2)
    # The notes are escaped Markdown (outside text is shown as text): compare the text itself.
    notes = " ".join(info.value for info in at.info).replace("\\", "")
    assert "loss" in notes and "dim" in notes and "s=" in notes


def test_an_unavailable_dataset_says_so_and_offers_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("MARGINLAB_CACHE", str(tmp_path))  # nothing cached, no internet here
    at = page("views/lab.py", {"dataset": "lfw"})
    assert not at.exception
    assert any("download" in w.value for w in at.warning)
    [offer] = [b for b in at.button if "MNIST" in b.label]
    offer.click().run()
    assert at.session_state["lab"].runs[0].config.dataset == "mnist-toy"


def test_compare_trains_six_losses_in_lockstep():
    at = page("views/compare.py")
    {b.label: b for b in at.button}["Step"].click().run()
    assert not at.exception
    live = at.session_state["compare"]
    assert [run.config.loss for run in live.runs] == [
        "softmax",
        "normface",
        "sphereface",
        "cosface",
        "arcface",
        "center",
    ]
    assert {run.steps for run in live.runs} == {5}
    assert len({run.init_hash for run in live.runs}) == 1
    table = at.dataframe[0].value
    assert len(table) == 6
    figures = live_figures(at)
    assert {f"compare_view_{run.config.loss}" for run in live.runs} <= set(figures)


def test_compare_loss_choice_is_kept_in_the_url():
    at = page("views/compare.py", {"losses": "arcface,cosface"})
    assert [run.config.loss for run in at.session_state["compare"].runs] == ["arcface", "cosface"]
    at.multiselect(key="compare_losses").set_value(["normface", "arcface", "cosface"]).run()
    assert not at.exception
    assert at.query_params["losses"] == "normface,arcface,cosface"
    assert len(at.session_state["compare"].runs) == 3


def test_formulas_show_the_current_numbers():
    at = page("views/formulas.py", {"loss": "arcface", "s": "30", "m2": "0.5"})
    assert not at.exception
    latex = " ".join(block.value for block in at.latex)
    assert r"30\,\cos(\theta_y + 0.5)" in latex


def test_save_then_load_a_run_restores_it():
    at = page("views/lab.py", {"loss": "cosface", "s": "20"})
    {b.label: b for b in at.button}["Step"].click().run()
    {b.label: b for b in at.button}["Prepare the run file"].click().run()
    assert not at.exception
    data = at.session_state["lab_run_file"]
    assert len(data) > 10_000
    # A fresh session (an ArcFace lab) uploads it.
    other = page("views/lab.py")
    assert other.session_state["lab"].runs[0].config.loss == "arcface"
    other.file_uploader(key="lab_upload").upload("run.pt", data).run()
    other.run()
    assert not other.exception
    run = other.session_state["lab"].runs[0]
    assert (run.config.loss, run.config.s, run.steps) == ("cosface", 20.0, 5)
    assert other.session_state["lab_config"].loss == "cosface"
    assert not other.error


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"not a run file at all", "Could not load it"),
        (b"PK\x03\x04" + b"\x00" * 100, "Could not load it"),
        (b"\x00" * (50 * 1024 * 1024 + 1), "at most 50 MB"),
    ],
)
def test_malformed_uploads_are_rejected_and_change_nothing(data, words):
    at = page("views/lab.py")
    before = at.session_state["lab"]
    at.file_uploader(key="lab_upload").upload("run.pt", data).run()
    assert not at.exception
    message = " ".join(e.value for e in at.error)
    assert words in message and "Nothing changed" in message
    assert at.session_state["lab"] is before


def test_a_missing_gpu_in_the_url_falls_back_to_auto():
    at = page("views/lab.py", {"device": "cuda"} if not _has_cuda() else {"device": "mps"})
    assert not at.exception
    assert at.session_state["lab"].runs[0].config.device == "auto"
    assert any("no " in info.value and "device" in info.value for info in at.info)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_a_link_naming_a_page_opens_it():
    at = page("main.py", {"page": "formulas", "loss": "cosface"})
    assert not at.exception
    assert any("CosFace" in title.value for title in at.title)
