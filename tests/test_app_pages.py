"""Streamlit AppTest: every page renders without an exception."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app"


@pytest.mark.parametrize("page", ["main.py", "pages/about.py", "pages/lab.py"])
def test_page_renders_without_exception(page):
    at = AppTest.from_file(str(APP / page), default_timeout=60).run()
    assert not at.exception, at.exception
