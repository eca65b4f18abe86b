"""AppTest of the Faces page: offline it explains itself; with the real Olivetti cache it trains."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[1] / "app" / "views" / "faces.py")


def test_offline_the_page_says_what_it_needs_and_offers_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("MARGINLAB_CACHE", str(tmp_path))  # nothing cached, no internet here
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    message = " ".join(w.value for w in at.warning)
    assert "Olivetti" in message and "1.4 MB" in message and "download" in message
    assert any("MNIST" in button.label for button in at.button)


@pytest.fixture
def olivetti_cache(shared_data_dir, monkeypatch):
    # data.cache_root()/scikit_learn_data is where scikit-learn's fetcher keeps Olivetti.
    monkeypatch.setenv("MARGINLAB_CACHE", str(shared_data_dir))
    return shared_data_dir


def test_closed_set_trains_identities_in_lockstep(olivetti_cache):
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception
    [step] = [b for b in at.button if b.label == "Step"]
    step.click().run()
    assert not at.exception
    live = at.session_state["faces_closed"]
    assert [run.config.loss for run in live.runs] == ["softmax", "arcface"]
    assert {run.steps for run in live.runs} == {5}
    assert live.runs[0].num_classes == 8
    at.slider(key="faces_k").set_value(5).run()
    assert at.session_state["faces_closed"].runs[0].num_classes == 5


def test_open_set_reports_verification_metrics(olivetti_cache):
    at = AppTest.from_file(PAGE, default_timeout=600).run()
    at.multiselect(key="faces_open_losses").set_value(["softmax", "arcface"]).run()
    at.select_slider(key="faces_open_steps").set_value(100).run()  # short: a test, not a study
    [run] = [b for b in at.button if b.label.startswith("Run the open-set")]
    run.click().run()
    assert not at.exception
    [table] = [frame.value for frame in at.dataframe if "AUC" in frame.value.columns]
    assert list(table["loss"]) == ["Softmax", "ArcFace"]
    assert table["AUC"].between(0.5, 1.0).all()
    # Table 3 on the three sets, each labelled, for each loss; no W-EC for unseen people.
    [angles] = [frame.value for frame in at.dataframe if "set" in frame.value.columns]
    sets = ["training images", "held-out images of the training classes", "unseen identities"]
    assert list(angles["set"]) == sets * 2
    assert list(angles["loss"]) == ["Softmax"] * 3 + ["ArcFace"] * 3
    unseen = angles[angles["set"] == "unseen identities"]
    assert unseen["W-EC °"].isna().all() and unseen["Intra °"].gt(0).all()
    assert any("W-EC" in caption.value and "aligned" in caption.value for caption in at.caption)
    assert len(at.get("image")) == 2  # the hardest false match and false non-match
