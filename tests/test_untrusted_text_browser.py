"""Text from outside is shown as text (issue 16): a link or an image in a URL value, an upload
error or a lesson file must not become a live link or a fetched image on the app's own page.
Checked where it matters, in a real browser."""

from __future__ import annotations

import urllib.parse

import pytest

from browser_utils import (
    assert_no_exception,
    browser_page,
    open_app,
    record_requests,
    require_chromium,
    streamlit_server,
)

pytestmark = pytest.mark.browser

LINK = "[Log in again](https://evil.example/x)"
IMAGE = "![p](http://127.0.0.1:9/pixel.png)"
BARE = "https://evil.example/y"
WWW = "www.evil.example"
EMAIL = "me@evil.example"


def test_url_values_with_markdown_render_as_literal_text():
    require_chromium()
    query = urllib.parse.urlencode(
        {"loss": LINK, "s": IMAGE, "dataset": BARE, "policy": WWW, "device": EMAIL}
    )
    with streamlit_server("app/main.py") as base_url, browser_page() as page:
        requests = record_requests(page)
        open_app(page, base_url, f"/formulas?{query}")
        notes = page.locator('[data-testid="stAlert"]')
        notes.filter(has_text="Ignored the URL value loss").wait_for()
        page.wait_for_timeout(1500)  # give an <img> time to be requested, were there one
        assert_no_exception(page)
        # What a reader sees (an invisible word joiner breaks autolinks; see ui/text.py).
        text = " ".join(notes.all_inner_texts()).replace("\u2060", "")
        for value in (LINK, IMAGE, BARE, WWW, EMAIL):
            assert value in text, (value, text)
        assert page.locator('a[href*="evil.example"]').count() == 0
        assert page.locator('img[src*="pixel.png"]').count() == 0
        fetched = [urllib.parse.urlsplit(url) for url in requests]
        assert not [u for u in fetched if u.path.endswith("pixel.png") or "evil" in u.netloc]
