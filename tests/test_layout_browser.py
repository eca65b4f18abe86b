"""What the class sees: every page at a laptop's 1280×720 and a projector's 1600×1000.

One server, one browser tab reused for every page. For each page and size the rendered DOM is
measured (layout_checks.figure_text_problems): no title, axis title, legend entry or annotation
of a figure may overlap another or reach outside its figure. Presenter mode must also collapse
the sidebar, show numbers larger than their labels and cut no metric; the Lab's history
scrubber must not move the plots when it appears. Screenshots go to
$MARGINLAB_LAYOUT_SHOTS (or the test's tmp folder), one per page and size, for a person to look
at; the assertions do not depend on them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from browser_utils import (
    REPO_ROOT,
    assert_no_exception,
    browser_page,
    open_app,
    require_chromium,
    streamlit_server,
)
from layout_checks import figure_text_problems
from marginlab.experiments.phase_map import phase_map
from marginlab.lessons.parser import LESSONS_DIR, load_lessons

SIZES = ((1280, 720), (1600, 1000))
SETTLE_S = 1.5  # the page must stay idle this long before it is measured
READY_TIMEOUT_S = 180.0  # a page that trains models on a busy 2-core machine takes a while
SHARED_SKLEARN = REPO_ROOT.parent / "shared" / "data" / "scikit_learn_data"

# Idle: no script running, every plot on the page drawn and its texts fitted at least once.
_READY_JS = """
() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const state = app ? app.dataset.testScriptState : 'initial';
  if (['initial', 'running', 'rerunRequested'].includes(state)) return -1;
  if (document.querySelector('[data-testid="stSpinner"]')) return -1;
  if (!document.querySelector('[data-testid="stMain"] h1')) return -1;
  const plots = Array.from(document.querySelectorAll('div.live-plotly'));
  if (plots.some((d) => d.offsetWidth > 0 && Number(d.dataset.fits || 0) < 1)) return -1;
  return plots.length;
}
"""
_FITS_JS = """
() => Array.from(document.querySelectorAll('div.live-plotly'))
  .filter((d) => d.offsetWidth > 0).map((d) => Number(d.dataset.fits || 0))
"""
# Presenter mode: where the sidebar is, and each metric's value and label.
_PRESENTER_JS = """
() => {
  // The size the text is drawn at: its own element's, however deep Streamlit nests it.
  const textPx = (el) => {
    if (!el) return 0;
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
      if (node.textContent.trim()) return parseFloat(getComputedStyle(node.parentElement).fontSize);
    }
    return 0;
  };
  const bar = document.querySelector('[data-testid="stSidebar"]');
  const box = bar ? bar.getBoundingClientRect() : null;
  const metrics = Array.from(document.querySelectorAll('[data-testid="stMetric"]')).map((m) => {
    const label = m.querySelector('[data-testid="stMetricLabel"]');
    const value = m.querySelector('[data-testid="stMetricValue"]');
    const cut = (el) => !!el && Array.from(el.querySelectorAll('*')).concat([el])
      .some((e) => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflow !== 'visible');
    return {
      label: label ? label.innerText : '', value: value ? value.innerText : '',
      labelPx: textPx(label), valuePx: textPx(value),
      cut: cut(label) || cut(value),
    };
  });
  return {sidebarShown: !!box && box.width > 50 && box.right > 50, metrics};
}
"""


FACE_DATASETS = ("olivetti", "lfw")


def lesson_pages() -> list[tuple[str, str, bool]]:
    lessons, errors = load_lessons(LESSONS_DIR)
    assert not errors, errors
    return [
        (f"lesson {x.order}", f"/?page=lessons&lesson={x.id}", x.preset.dataset in FACE_DATASETS)
        for x in lessons
    ]


# (name, address, needs the face images: without them the page says so and draws nothing)
PAGES: list[tuple[str, str, bool]] = [
    ("lab", "/", False),
    ("lab 3-D", "/?dim=3", False),
    ("compare 2-D", "/?page=compare", False),
    ("compare 3-D", "/?page=compare&dim=3", False),
    ("formulas", "/?page=formulas", False),
    ("phase map", "/?page=phase-map", False),
    ("faces", "/?page=faces", True),
    *lesson_pages(),
    ("presenter lab", "/?presenter=true", False),
    ("presenter compare", "/?page=compare&presenter=true", False),
]


def settle(page, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until the page is idle (see _READY_JS) and stays so for SETTLE_S."""
    deadline = time.monotonic() + timeout_s
    since, last = None, None
    while time.monotonic() < deadline:
        state = page.evaluate(_READY_JS)
        if state >= 0 and state == last:
            since = since or time.monotonic()
            if time.monotonic() - since >= SETTLE_S:
                return
        else:
            since = None
        last = state
        time.sleep(0.25)
    raise AssertionError(f"page {page.url} not idle after {timeout_s:.0f} s")


def resize(page, width: int, height: int) -> None:
    """Change the viewport and wait until every visible plot has fitted its texts again."""
    before = page.evaluate(_FITS_JS)
    page.set_viewport_size({"width": width, "height": height})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        after = page.evaluate(_FITS_JS)
        if len(after) == len(before) and all(a > b for a, b in zip(after, before, strict=True)):
            break
        time.sleep(0.25)
    settle(page)


def screenshot(page, folder: Path, name: str, width: int, height: int) -> None:
    """The whole page (Streamlit scrolls inside its main block: grow the viewport to it)."""
    full = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": width, "height": max(height, min(int(full), 8000))})
    time.sleep(1.0)
    page.screenshot(path=folder / f"{name.replace(' ', '-')}-{width}x{height}.png")
    page.set_viewport_size({"width": width, "height": height})


def presenter_problems(page, name: str) -> list[str]:
    found = page.evaluate(_PRESENTER_JS)
    problems = [f"{name}: the sidebar is open in presenter mode"] if found["sidebarShown"] else []
    if not found["metrics"] and name == "presenter lab":  # Compare shows a table instead
        problems.append(f"{name}: no metrics found")
    for metric in found["metrics"]:
        if metric["valuePx"] <= metric["labelPx"]:
            problems.append(
                f"{name}: metric {metric['label']!r} value {metric['valuePx']}px is not larger "
                f"than its label {metric['labelPx']}px"
            )
        if metric["cut"]:
            problems.append(f"{name}: metric {metric['label']!r} = {metric['value']!r} is cut")
    return problems


def first_phase_run(cache: Path) -> None:
    """The phase map's first run, done for real with the page's settings, in `cache`: the page
    then draws the map with one cell measured and the others waiting."""

    class OneRunDone(Exception):
        pass

    def stop(done: int, total: int, text: str) -> None:
        raise OneRunDone

    with pytest.raises(OneRunDone):
        phase_map(cache_dir=cache / "phase_maps", progress=stop)


def chosen_pages() -> list[tuple[str, str, bool]]:
    """All pages, or those named in $MARGINLAB_LAYOUT_PAGES ("lab,lesson 3": to look at a few)."""
    wanted = [n.strip() for n in os.environ.get("MARGINLAB_LAYOUT_PAGES", "").split(",")]
    wanted = [n for n in wanted if n]
    return [page for page in PAGES if not wanted or page[0] in wanted]


def scrubber_problems(page) -> list[str]:
    """Two Steps make a history to replay: the scrubber appears, labelled in training steps,
    and the plots below it stay where they were (it used to push the page down)."""
    top = "() => document.querySelector('div.live-plotly').getBoundingClientRect().top"
    before = page.evaluate(top)
    for _ in range(2):
        page.get_by_role("button", name="Step", exact=True).click()
        settle(page)
    problems = []
    if not page.get_by_text("replay the history: training step").count():
        problems.append("lab: no scrubber labelled in training steps after two Steps")
    moved = page.evaluate(top) - before
    if abs(moved) > 2:
        problems.append(f"lab: the plots moved {moved:+.0f} px when the scrubber appeared")
    return problems


@pytest.mark.browser
@pytest.mark.usefixtures("one_thread")
def test_every_page_fits_a_laptop_and_a_projector(tmp_path: Path) -> None:
    require_chromium()
    pages = chosen_pages()
    shots = Path(os.environ.get("MARGINLAB_LAYOUT_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    if any(name == "phase map" for name, _, _ in pages):
        first_phase_run(tmp_path)
    env = {"MARGINLAB_CACHE": str(tmp_path)}
    if SHARED_SKLEARN.is_dir():  # the Faces page and lesson 7 draw faces where CI has them
        env["SCIKIT_LEARN_DATA"] = str(SHARED_SKLEARN)
    problems: list[str] = []
    drawn: dict[str, int] = {}
    with streamlit_server("app/main.py", env=env) as base_url, browser_page() as page:
        for name, path, _faces in pages:
            page.set_viewport_size({"width": SIZES[0][0], "height": SIZES[0][1]})
            open_app(page, base_url, path)
            settle(page)
            assert_no_exception(page)
            for k, (width, height) in enumerate(SIZES):
                if k:
                    resize(page, width, height)
                elif name == "lab":
                    problems += [f"at {width}×{height}: {p}" for p in scrubber_problems(page)]
                figures, found = figure_text_problems(page)
                drawn[name] = max(drawn.get(name, 0), figures)
                problems += [f"{name} at {width}×{height}: {p}" for p in found]
                if name.startswith("presenter"):
                    problems += [
                        f"at {width}×{height}: {p}" for p in presenter_problems(page, name)
                    ]
                screenshot(page, shots, name, width, height)
    # Every page that trains or draws shows its figures (an empty page would pass trivially).
    faces = SHARED_SKLEARN.is_dir()
    empty = [name for name, _, needs in pages if drawn[name] == 0 and (faces or not needs)]
    assert not empty, f"pages without figures: {empty}"
    assert not problems, f"{len(problems)} layout problems:\n" + "\n".join(problems)
