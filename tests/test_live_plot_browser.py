"""ui.live_plot in a real browser: a dragged camera and a 2-D zoom survive live updates.

st.plotly_chart loses both on every rerun (streamlit/streamlit#8882); live_plotly must not.
The demo app (tests/apps/live_plot_demo.py) changes every figure's data twice a second.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

import pytest

from browser_utils import (
    assert_no_exception,
    browser_page,
    non_local_requests,
    open_app,
    record_requests,
    require_chromium,
    streamlit_server,
)

DEMO = "tests/apps/live_plot_demo.py"
DEFAULT_EYE = {"x": 1.25, "y": 1.25, "z": 1.25}

# State of one plot, read from plotly's own objects on the graph div.
READ_PLOT = """key => {
  const d = document.querySelector(`div.live-plotly[data-key="${key}"]`);
  if (!d || !d._fullLayout) return null;
  const fl = d._fullLayout;
  return {
    updates: Number(d.dataset.updates || 0),
    title: fl.title?.text ?? null,
    eye: fl.scene ? { ...fl.scene.camera.eye } : null,
    xrange: fl.xaxis && !fl.scene ? [...fl.xaxis.range] : null,
    x0: Array.from(d._fullData[0].x.slice(0, 3)),
  };
}"""


def read_plot(page: Any, key: str) -> dict[str, Any]:
    state = page.evaluate(READ_PLOT, key)
    assert state is not None, f"plot {key!r} is not rendered"
    return state


def tick_of(state: dict[str, Any]) -> int:
    match = re.search(r"tick (\d+)", state["title"] or "")
    assert match, state
    return int(match.group(1))


def same_eye(a: dict[str, float], b: dict[str, float], tol: float = 1e-3) -> bool:
    return all(math.isclose(a[k], b[k], abs_tol=tol) for k in "xyz")


def drag(page: Any, key: str, dx: float, dy: float, start: tuple[float, float] = (0.5, 0.55)):
    """A real mouse drag inside the plot, from a point given as fractions of its box."""
    box = page.locator(f'div.live-plotly[data-key="{key}"]').bounding_box()
    assert box, key
    x = box["x"] + start[0] * box["width"]
    y = box["y"] + start[1] * box["height"]
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=12)
    page.mouse.up()


def wait_for_ticks(page: Any, key: str, after: int, ticks: int = 3, timeout_s: float = 20):
    """Wait until the plot shows data at least ``ticks`` ticks newer than ``after``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = read_plot(page, key)
        if tick_of(state) >= after + ticks:
            return state
        page.wait_for_timeout(200)
    raise AssertionError(f"{key}: no {ticks} new ticks after tick {after} in {timeout_s} s")


@pytest.mark.browser
def test_camera_and_zoom_survive_live_updates(tmp_path: Path) -> None:
    require_chromium()  # skip (or fail in CI) before starting a server for nothing
    # The production path: plotly.js copied into the app's static folder and served by
    # Streamlit's static serving (streamlit_config.toml turns it on for the real app).
    with (
        streamlit_server(DEMO, args=["--server.enableStaticServing=true"]) as base_url,
        browser_page(height=1500) as page,
    ):
        requests = record_requests(page)
        open_app(page, base_url)
        page.wait_for_function(
            "document.querySelectorAll('div.live-plotly.js-plotly-plot').length === 4"
        )
        # Remember the very div and WebGL canvases: updates must reuse them.
        page.evaluate(
            """() => { window.__sphereDiv = document.querySelector(
                 'div.live-plotly[data-key="sphere"]');
               window.__canvases = document.querySelectorAll('canvas').length; }"""
        )
        before = read_plot(page, "sphere")
        assert same_eye(before["eye"], DEFAULT_EYE), before
        page.screenshot(path=tmp_path / "1_loaded.png", full_page=True)

        # 3-D: rotate the sphere with the mouse.
        drag(page, "sphere", dx=160, dy=40)
        page.wait_for_timeout(300)
        dragged = read_plot(page, "sphere")
        assert not same_eye(dragged["eye"], DEFAULT_EYE), "the drag did not rotate the camera"

        # 2-D: drag a zoom box.
        circle_before = read_plot(page, "circle")
        drag(page, "circle", dx=160, dy=110, start=(0.12, 0.3))  # around the left arc
        page.wait_for_timeout(300)
        zoomed = read_plot(page, "circle")
        assert zoomed["xrange"] != pytest.approx(circle_before["xrange"]), "no 2-D zoom"
        assert zoomed["xrange"][1] - zoomed["xrange"][0] < 2.0, zoomed

        # Shared camera: rotate A; B follows.
        drag(page, "cmp_a", dx=-120, dy=30)
        page.wait_for_timeout(300)
        cam_a = read_plot(page, "cmp_a")["eye"]
        assert not same_eye(cam_a, DEFAULT_EYE)
        page.screenshot(path=tmp_path / "2_dragged.png", full_page=True)

        # Several live updates later, with new data...
        after = wait_for_ticks(page, "sphere", after=tick_of(dragged), ticks=4)
        assert after["updates"] > dragged["updates"]
        assert after["x0"] != pytest.approx(dragged["x0"]), "the data did not change"
        circle_after = wait_for_ticks(page, "circle", after=tick_of(zoomed), ticks=3)
        assert circle_after["x0"] != pytest.approx(zoomed["x0"])
        a_after = wait_for_ticks(page, "cmp_a", after=0, ticks=tick_of(after))
        b_after = read_plot(page, "cmp_b")
        page.screenshot(path=tmp_path / "3_after_updates.png", full_page=True)

        # ...the user's camera and zoom are still there.
        assert same_eye(after["eye"], dragged["eye"]), (after["eye"], dragged["eye"])
        assert circle_after["xrange"] == pytest.approx(zoomed["xrange"])
        assert same_eye(a_after["eye"], cam_a), (a_after["eye"], cam_a)
        assert same_eye(b_after["eye"], cam_a), (b_after["eye"], cam_a)

        # One div, reused: same node, no extra WebGL canvases.
        assert page.evaluate(
            """() => window.__sphereDiv === document.querySelector(
                 'div.live-plotly[data-key="sphere"]')
               && document.querySelectorAll('canvas').length === window.__canvases"""
        )
        assert_no_exception(page)

    # plotly.js came from this server, and nothing was fetched from anywhere else.
    plotly_urls = [u for u in requests if "plotly" in u and u.endswith(".js")]
    assert plotly_urls and all(u.startswith(base_url + "/app/static/") for u in plotly_urls), (
        plotly_urls
    )
    assert non_local_requests(requests) == []


@pytest.mark.browser
def test_a_changed_title_is_wrapped_before_it_is_drawn(tmp_path: Path) -> None:
    """A live title that names the tick changes on every update: it goes in wrapped to the
    plot's width, so the text fit needs no second pass (each pass redraws the whole plot)."""
    require_chromium()
    with streamlit_server(DEMO) as base_url, browser_page(width=700) as page:
        open_app(page, base_url, "/?plots=circle&long=1&every=0.3")
        page.wait_for_function("document.querySelector('div.live-plotly.js-plotly-plot')")
        # (The first draw has no earlier fit to go in with: it is fitted once drawn, and the
        # demo's title, left at y "auto", is centred in the margin the fit sets.)
        first = wait_for_ticks(page, "circle", after=0, ticks=2)
        page.evaluate(COUNT_FIT_PASSES)
        later = wait_for_ticks(page, "circle", after=tick_of(first), ticks=4)
        counted = page.evaluate("() => window.__fitPasses")
        page.screenshot(path=tmp_path / "wrapped.png")
    assert later["updates"] > first["updates"]
    assert "<br>" in later["title"], later["title"]  # the title is wrapped...
    assert counted["reacts"] >= 3, counted
    assert counted["wrapped"] == counted["reacts"], counted  # ...in every draw...
    assert counted["passes"] == 0, counted  # ...with no redraw to fit it


@pytest.mark.browser
def test_a_figure_sent_again_unchanged_is_not_redrawn() -> None:
    """A figure that is the same on every tick (Compare's target logits while playing) costs
    the browser nothing after its first draw, while the plot beside it goes on updating."""
    require_chromium()
    with streamlit_server(DEMO) as base_url, browser_page() as page:
        open_app(page, base_url, "/?plots=circle,still&every=0.3")
        page.wait_for_function(
            "document.querySelectorAll('div.live-plotly.js-plotly-plot').length === 2"
        )
        first = wait_for_ticks(page, "circle", after=0, ticks=2)
        later = wait_for_ticks(page, "circle", after=tick_of(first), ticks=5)
        still = page.evaluate(
            """() => { const d = document.querySelector('div.live-plotly[data-key="still"]');
                       return { updates: Number(d.dataset.updates), same: Number(d.dataset.same),
                                traces: d.data.length }; }"""
        )
        assert_no_exception(page)
    assert later["updates"] > first["updates"]  # the changing plot was redrawn...
    assert still["updates"] == 1, still  # ...the unchanged one drawn once,
    assert still["same"] >= 4 and still["traces"] > 0, still  # though sent on every tick


@pytest.mark.browser
def test_an_update_with_the_same_texts_keeps_its_text_fit() -> None:
    """New points under the same title, at the same size: the fit done after the first draw
    holds, and is not measured again (two forced layouts an update), while a plot whose title
    changes is fitted again on every draw."""
    require_chromium()
    with streamlit_server(DEMO) as base_url, browser_page(width=700) as page:
        open_app(page, base_url, "/?plots=circle,steady&long=1&every=0.3")
        page.wait_for_function(
            "document.querySelectorAll('div.live-plotly.js-plotly-plot').length === 2"
        )
        first = wait_for_ticks(page, "circle", after=0, ticks=2)
        wait_for_ticks(page, "circle", after=tick_of(first), ticks=5)
        counts = page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('div.live-plotly')].map(
                 (d) => [d.dataset.key, { updates: Number(d.dataset.updates),
                                          kept: Number(d.dataset.fitsKept ?? 0) }]))"""
        )
        assert_no_exception(page)
    steady, changing = counts["steady"], counts["circle"]
    assert steady["updates"] >= 5, counts
    assert steady["kept"] >= steady["updates"] - 2, counts  # fitted once or twice, then kept
    assert changing["kept"] == 0, counts  # its title names the tick: fitted every time


# Counts, on the circle plot, the draws (Plotly.react), those that drew a wrapped title, and
# the text fit's extra passes (Plotly.update).
COUNT_FIT_PASSES = """() => {
  const count = (window.__fitPasses = { reacts: 0, wrapped: 0, passes: 0 });
  const circle = (gd) => gd?.dataset?.key === "circle";
  const { react, update } = window.Plotly;
  window.Plotly.react = function (gd, fig, ...rest) {
    if (circle(gd)) {
      count.reacts += 1;
      count.wrapped += String(fig?.layout?.title?.text ?? "").includes("<br>");
    }
    return react.call(this, gd, fig, ...rest);
  };
  window.Plotly.update = function (gd, ...rest) {
    if (circle(gd)) count.passes += 1;
    return update.call(this, gd, ...rest);
  };
}"""


@pytest.mark.browser
def test_plotly_js_is_served_without_static_serving(tmp_path: Path) -> None:
    require_chromium()
    # Without server.enableStaticServing (another entry script, a broken config link on
    # Windows) plotly.js comes from plotly's package folder via the component file route.
    with streamlit_server(DEMO) as base_url, browser_page() as page:
        requests = record_requests(page)
        open_app(page, base_url, "/?every=1")
        page.wait_for_function(
            "document.querySelector('div.live-plotly[data-key=\"sphere\"]')?.dataset.updates >= 2"
        )
        page.screenshot(path=tmp_path / "fallback.png")
        assert_no_exception(page)
    plotly_urls = [u for u in requests if "plotly" in u and ".js" in u]
    assert plotly_urls and all(u.startswith(base_url + "/component/") for u in plotly_urls)
    assert non_local_requests(requests) == []


def test_apptest_sees_the_figure_payload() -> None:
    """AppTest cannot run the component's JS, but it sees the bytes the browser would get."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).parent / "apps" / "live_plot_demo.py"))
    at.run(timeout=30)
    assert not at.exception
    elements = [e for e in at.get("bidi_component") if e.proto.component_name]
    assert len(elements) == 4
    payload = json.loads(elements[0].proto.bytes)
    assert payload["key"] == "sphere"
    assert "plotly" in payload["src"]  # a path on this server, no host
    trace = payload["fig"]["data"][0]
    assert trace["type"] == "scatter3d"
    assert trace["x"]["dtype"] == "f4"  # float32 sent as base64, not as a list
    assert payload["fig"]["layout"]["title"]["text"] == "sphere tick 1"
