"""A class in real browser tabs: N chromium tabs open one lesson link and all press Play.

    python benchmarks/bench_class_tabs.py [--tabs 6] [--seconds 60] [--lesson 03-arcface-margin]

One `streamlit run app/main.py` and one headless chromium (Debian's, software WebGL) with a
context per tab, so each tab is its own Streamlit session, as 6 students' laptops would be;
here they share the server's 2 cores with the server and its training worker. The tabs are on
the same lesson preset, so they follow one shared run (training/service/sharing.py).

Printed per tab: picture updates/s (redraws of the lesson's first live plot, counted by the
plot component) and steps/s shown; then how far apart the tabs' shown steps were when sampled
together (the same run, drawn at each tab's own tick), and the RSS of the server and its
workers. Goal (issue "A whole class on one server"): each tab >= 1 update/s, the same
picture. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "app"), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from bench_app import children, rss_mb  # noqa: E402
from browser_utils import browser_pages, open_app, server_pid, streamlit_server  # noqa: E402
from test_app_live_browser import metric, press, step_of, wait_until  # noqa: E402

FIRST_PLOT_UPDATES_JS = """() => {
  const d = document.querySelector('div.live-plotly');
  return d ? Number(d.dataset.updates || 0) : null;
}"""


def open_lesson(page, base_url: str, lesson: str) -> None:
    open_app(page, base_url, f"/?page=lessons&lesson={lesson}", timeout_ms=120_000)
    wait_until(page, lambda: page.evaluate(FIRST_PLOT_UPDATES_JS), "the lesson's plot", 180)
    wait_until(page, lambda: metric(page, "step") is not None, "the step metric", 120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--lesson", default="03-arcface-margin")
    args = parser.parse_args()
    print(f"CPUs {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, {args.tabs} tabs on "
          f"lesson {args.lesson}, {args.seconds:.0f} s\n")  # fmt: skip
    with streamlit_server("app/main.py") as base_url, browser_pages(args.tabs) as pages:
        for page in pages:
            open_lesson(page, base_url, args.lesson)
        for page in pages:
            press(page, "Play", then="Pause")
        pages[0].wait_for_timeout(3000)
        updates0 = [page.evaluate(FIRST_PLOT_UPDATES_JS) for page in pages]
        steps0 = [step_of(page) for page in pages]
        spreads: list[int] = []
        start = time.monotonic()
        while time.monotonic() - start < args.seconds:
            pages[0].wait_for_timeout(1000)
            shown = [step_of(page) for page in pages]
            spreads.append(max(shown) - min(shown))
        elapsed = time.monotonic() - start
        updates = [
            (page.evaluate(FIRST_PLOT_UPDATES_JS) - u) / elapsed
            for page, u in zip(pages, updates0, strict=True)
        ]
        steps = [(step_of(p) - s) / elapsed for p, s in zip(pages, steps0, strict=True)]
        pid = server_pid(base_url)
        server, workers = rss_mb(pid), sum(rss_mb(child) for child in children(pid))
        for page in pages:
            press(page, "Pause", then="Play")
    print("tab  picture updates/s  steps/s shown")
    for k, (u, s) in enumerate(zip(updates, steps, strict=True)):
        print(f"{k + 1:>3}  {u:>17.2f}  {s:>13.1f}")
    print(f"\nlowest updates/s: {min(updates):.2f} (goal >= 1)")
    median = statistics.median(spreads)
    print(f"steps apart between tabs, sampled together once a second: median {median:.0f}, "
          f"max {max(spreads)} ({len(spreads)} samples)")  # fmt: skip
    print(f"RSS: server {server:.0f} MB + workers {workers:.0f} MB")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
