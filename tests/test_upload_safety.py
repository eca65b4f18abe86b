"""Uploads on the Lab page (issue 16): a run file from a stranger is refused with one line and
the session's run kept, whether it inflates, asks for a huge model or carries a bad history."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from marginlab.training.config import default_config
from marginlab.training.run import Run
from marginlab.training.run_files import save_run
from test_run_file_safety import MB, deflate_bomb, payload_of, write

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lab_file(tmp_path_factory) -> Path:
    """A run file the Lab itself would save (its default config), four snapshots long."""
    run = Run(default_config("arcface", 2, snapshot_every=5))
    run.step(15)
    path = tmp_path_factory.mktemp("lab") / "lab.pt"
    save_run(run, path)
    return path


def test_the_upload_limit_is_the_servers(tmp_path):
    from ui.exports import UPLOAD_LIMIT_BYTES

    config = tomllib.loads((REPO / "streamlit_config.toml").read_text())
    assert config["server"]["maxUploadSize"] * MB == UPLOAD_LIMIT_BYTES


def _bad_files(good: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    files = {}
    bomb = folder / "bomb.pt"
    deflate_bomb(good, bomb, inflated=256 * MB)
    files["compressed"] = (bomb, "compressed")
    payload = payload_of(good)
    payload["run"]["state"]["config"]["dim"] = 10_000_000
    files["huge dim"] = (write(payload, folder / "dim.pt"), "dim")
    payload = payload_of(good)
    payload["run"]["history"][-1]["features"] = torch.zeros(3, 7)
    files["wrong shape"] = (write(payload, folder / "shape.pt"), "features")
    payload = payload_of(good)
    payload["run"]["history"][0]["loss"] = math.nan
    files["nan"] = (write(payload, folder / "nan.pt"), "NaN")
    payload = payload_of(good)
    payload["run"]["state"]["steps"] = -50
    files["negative steps"] = (write(payload, folder / "steps.pt"), "steps")
    return files


def test_bad_uploads_are_refused_in_one_line_and_the_run_is_kept(lab_file, tmp_path):
    at = AppTest.from_file(str(REPO / "app" / "views" / "lab.py"), default_timeout=240).run()
    {b.label: b for b in at.button}["Step"].click().run()
    before = at.session_state["lab"]
    steps = before.steps
    for name, (path, words) in _bad_files(lab_file, tmp_path).items():
        at.file_uploader(key="lab_upload").upload(path.name, path.read_bytes()).run()
        assert not at.exception, (name, at.exception)
        message = " ".join(e.value for e in at.error).replace("\\", "")
        assert words in message and "Nothing changed" in message, (name, message)
        assert "\n" not in message and str(tmp_path) not in message, (name, message)
        assert at.session_state["lab"] is before and before.steps == steps, name
    # and a good file still loads afterwards
    at.file_uploader(key="lab_upload").upload("lab.pt", lab_file.read_bytes()).run()
    at.run()
    assert not at.exception and not at.error
    assert at.session_state["lab"].steps == 15
