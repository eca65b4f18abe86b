"""The foundation's real-browser smoke test: `streamlit run app/main.py` in Debian's chromium."""

import socket
from urllib.parse import urlsplit

import pytest

from browser_utils import (
    assert_no_exception,
    browser_page,
    non_local_requests,
    open_app,
    record_requests,
    streamlit_server,
)

pytestmark = pytest.mark.browser

# streamlit_config.toml's textColor "#0f172a": not a Streamlit default, so seeing it in the
# page proves the top-level config file was found through app/.streamlit/config.toml.
CONFIG_TEXT_COLOR = "rgb(15, 23, 42)"


def _port_open(base_url: str) -> bool:
    parts = urlsplit(base_url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parts.hostname, parts.port)) == 0


def test_app_opens_offline_in_a_real_browser(tmp_path):
    with streamlit_server("app/main.py") as base_url:
        with browser_page() as page:
            requests = record_requests(page)
            open_app(page, base_url)
            page.get_by_role("heading", name="Margin Lab").wait_for()
            page.get_by_text("shipped MNIST subset").first.wait_for()
            assert_no_exception(page)
            color = page.evaluate(
                "getComputedStyle(document.querySelector('[data-testid=stMain] h1')).color"
            )
            assert color == CONFIG_TEXT_COLOR
            page.screenshot(path=str(tmp_path / "lab.png"), full_page=True)
            assert non_local_requests(requests) == []
        assert _port_open(base_url)
    assert not _port_open(base_url), "the Streamlit server outlived the test"
    assert (tmp_path / "lab.png").stat().st_size > 10_000
