"""How fast the app answers and how much it holds: prints numbers, asserts nothing.

    python benchmarks/bench_app.py                 # everything (about 5 minutes)
    python benchmarks/bench_app.py --only i iv     # the parts that need no browser
    python benchmarks/bench_app.py --seconds 10    # shorter browser windows

(i)   s/m change → new figures, server side, 2-D and 3-D (mnist-toy ArcFace, a real Run after
      60 steps): the Lab's figure set built from the snapshot with the new m2 and turned into
      the JSON the plot component sends (goal ≤ 50 ms in 3-D); baseline: the same set without
      JSON. Also a whole AppTest rerun of views/lab.py after moving the m2 slider (script,
      sidebar, figures, AppTest's own overhead).
(ii)  live update rate in a real browser (Debian chromium, headless, software WebGL) while
      playing, over --seconds: how often the step counter and the embedding plot change, for
      the Lab and for Compare with 6 losses (goal ≥ 2/s); baseline: the tick's ceiling
      1/TICK_SECONDS. Also the page's main-thread load (long tasks) and the Pause latency.
(iii) server RSS with no session, one and four sessions training (four pages playing); goal
      ≤ 500 MB per session (the increment per session, and the server total / sessions).
      Also each session's training steps/s (the pages share this machine's cores).
(v)   the server alone: pages whose plotly.js draws nothing (real clients draw on their own
      machines), 1 and 4 sessions playing: ticks/s and steps/s per session, server CPU per
      tick, RSS; with the default config and with runner.postScriptGC=false (Streamlit's
      gc.collect(2) after every run, fragment ticks included).
(iv)  per-tick compute, in process, as the fragment does it: a training chunk ("steps per
      update" = 5 within the 120 ms budget) + snapshot, then the page's figures + JSON; Lab
      and Compare (6 losses). Baseline: the training chunk alone.

The server runs as the app does (torch.set_num_threads(1) in main.py); this process does the
same for (i) and (iv). Medians unless said. Timings depend on what else runs on the machine:
the load average is printed before and after; on a shared 2-core machine read the numbers as
orders of magnitude.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# ui.* lives beside the pages (Streamlit puts app/ on the path); browser_utils in tests/.
sys.path[:0] = [str(ROOT / "app"), str(ROOT / "tests")]

import torch  # noqa: E402

from marginlab.figures import target_logit_figure  # noqa: E402
from marginlab.figures.run import (  # noqa: E402
    angle_figure,
    curves_figure,
    embedding_figure,
    logit_figure,
    metrics_row,
    raw_figure,
)
from marginlab.figures.style import margin_label, margin_of  # noqa: E402
from marginlab.lab_state import DEFAULT_COMPARE, LabConfig, run_config  # noqa: E402
from marginlab.training.comparison import LockstepComparison  # noqa: E402
from marginlab.training.run import Run  # noqa: E402
from ui.live import STEP_BUDGET_SECONDS, TICK_SECONDS, LiveTraining, _train_chunk  # noqa: E402
from ui.live_plot import figure_json  # noqa: E402

GOAL_FIGURES_MS = 50.0
GOAL_RATE = 2.0
GOAL_SESSION_MB = 500.0
SPEED = LabConfig().speed  # the app's default "steps per update"
ROWS: list[tuple[str, str, str, str]] = []  # (measure, value, goal/baseline, verdict) summary


def row(measure: str, value: str, goal: str = "", ok: bool | None = None) -> None:
    verdict = "" if ok is None else ("ok" if ok else "OVER GOAL")
    ROWS.append((measure, value, goal, verdict))


def ms(seconds: float) -> float:
    return 1e3 * seconds


def median_ms(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, max) in ms after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return ms(statistics.median(times)), ms(max(times))


# ----- the pages' figure sets (as views/lab.py and views/compare.py draw them) ---------------


def lab_figures(run: Run, params: dict[str, Any], history: list) -> list:
    snap = history[-1]
    labels, names = run.data.probe_labels, run.data.dataset.class_names
    figures = [
        embedding_figure(snap, labels, params, names=names),
        logit_figure(snap, labels, params),
        raw_figure(snap, labels, params, names=names),
        angle_figure(snap, labels, params, names=names),
        curves_figure(history),
    ]
    return [fig for fig in figures if fig is not None]


def compare_figures(runs: list[Run], params: dict[str, dict]) -> list:
    labels, names = runs[0].data.probe_labels, runs[0].data.dataset.class_names
    figures = []
    for run in runs:
        spec = params[run.config.loss]
        metrics_row(run.latest_snapshot(), labels, spec, names=names)  # the table's row
        title = margin_label(run.config.loss, spec.get("s"), **margin_of(spec))
        fig = embedding_figure(run.latest_snapshot(), labels, spec, names=names, title=title)
        fig.update_layout(showlegend=False)
        figures.append(fig)
    figures.append(target_logit_figure(list(params.values()), show_paper_curves=False))
    figures.append(curves_figure({run.config.loss: list(run.history) for run in runs}))
    return figures


def to_json(figures: list) -> int:
    return sum(len(figure_json(fig)) for fig in figures)


def lab_run(dim: int, steps: int = 60) -> tuple[Run, dict[str, Any]]:
    wanted = run_config(LabConfig(dim=dim))
    run = Run(wanted)
    for _ in range(steps // SPEED):
        run.step(SPEED)
        run.snapshot()
    return run, {"loss": wanted.loss, **wanted.head_params()}


# ----- (i) s/m change -> figures --------------------------------------------------------------


def part_i(repeats: int) -> None:
    print("(i) s/m change → new figures (server side), ArcFace on mnist-toy after 60 steps")
    for dim in (2, 3):
        run, params = lab_run(dim)
        history = list(run.history)
        values = iter([0.1, 0.3, 0.5, 0.25] * 100)

        def build(with_json: bool, run=run, params=params, history=history, values=values):
            figures = lab_figures(run, {**params, "m2": next(values)}, history)
            return to_json(figures) if with_json else len(figures)

        bare, _ = median_ms(lambda b=build: b(False), repeats)
        full, worst = median_ms(lambda b=build: b(True), repeats)
        size = build(True) / 1024
        print(
            f"    {dim}-D: figures {bare:6.1f} ms, figures + JSON {full:6.1f} ms "
            f"(max {worst:.0f}), {size:.0f} KiB of JSON"
        )
        goal = GOAL_FIGURES_MS if dim == 3 else None
        row(
            f"(i) {dim}-D s/m change: figures + JSON",
            f"{full:.1f} ms",
            f"goal ≤ {goal:g} ms" if goal else f"baseline figures only {bare:.1f} ms",
            None if goal is None else full <= goal,
        )
        if goal:
            row("(i) 3-D baseline: figures without JSON", f"{bare:.1f} ms")
    apptest_rerun(repeats=max(3, repeats // 3))


def apptest_rerun(repeats: int) -> None:
    from streamlit.testing.v1 import AppTest

    for dim in (2, 3):
        at = AppTest.from_file(str(ROOT / "app" / "views" / "lab.py"), default_timeout=240)
        at.query_params["dim"] = str(dim)
        at.run()
        times = []
        for value in [0.3, 0.45, 0.2, 0.35, 0.5, 0.25][:repeats]:
            start = time.perf_counter()
            at.slider(key="control_m2").set_value(value).run()
            times.append(time.perf_counter() - start)
        if at.exception:
            print(f"    AppTest {dim}-D raised: {at.exception}")
        med = ms(statistics.median(times))
        print(f"    {dim}-D AppTest rerun after an m2 change: median {med:.0f} ms (n={len(times)})")
        row(f"(i) {dim}-D AppTest rerun after m2 change", f"{med:.0f} ms", "whole page script")


# ----- (iv) per-tick compute ------------------------------------------------------------------


def part_iv(ticks: int) -> None:
    budget = ms(STEP_BUDGET_SECONDS)
    print(f"(iv) per-tick compute (up to {SPEED} steps within {budget:.0f} ms, then figures)")
    for dim in (2, 3):
        wanted = run_config(LabConfig(dim=dim))
        run = Run(wanted)
        params = {"loss": wanted.loss, **wanted.head_params()}

        def figures(run: Run = run, params: dict = params) -> list:
            return lab_figures(run, params, list(run.history))

        tick_times(f"Lab {dim}-D", LiveTraining((), run), figures, ticks)
    config = LabConfig()
    wanted = [run_config(config, loss) for loss in DEFAULT_COMPARE]
    comparison = LockstepComparison(wanted)
    live = LiveTraining((), comparison)
    params = {c.loss: {"loss": c.loss, **c.head_params()} for c in wanted}
    tick_times("Compare 6 losses 2-D", live, lambda: compare_figures(live.runs, params), ticks)


def tick_times(name: str, live: LiveTraining, figures: Callable[[], list], ticks: int) -> None:
    for _ in range(5):  # warm-up: first snapshots, caches, step_for's per-step estimate
        live.advance(SPEED)
        to_json(figures())
    train, snap, draw, steps = [], [], [], []
    for _ in range(ticks):
        # LiveTraining.advance split in its two halves (the same calls, under the same lock).
        with live.lock:
            start = time.perf_counter()
            steps.append(_train_chunk(live.trainer, SPEED, STEP_BUDGET_SECONDS))
            middle = time.perf_counter()
            for run in live.runs:
                run.snapshot()
            end = time.perf_counter()
        to_json(figures())
        train.append(middle - start)
        snap.append(end - middle)
        draw.append(time.perf_counter() - end)
    total = [a + b + c for a, b, c in zip(train, snap, draw, strict=True)]
    t, s, d, tot = (ms(statistics.median(x)) for x in (train, snap, draw, total))
    print(
        f"    {name:<20} training {t:5.0f} ms ({statistics.median(steps):.0f} steps), "
        f"snapshot {s:4.0f} ms, figures+JSON {d:4.0f} ms, tick {tot:4.0f} ms "
        f"(max {ms(max(total)):.0f})"
    )
    row(f"(iv) {name}: tick compute", f"{tot:.0f} ms", f"baseline training chunk {t:.0f} ms")


# ----- browser parts --------------------------------------------------------------------------


@contextmanager
def app_server(extra_args: tuple[str, ...] = ()) -> Iterator[str]:
    from browser_utils import streamlit_server

    with streamlit_server("app/main.py", args=list(extra_args)) as base_url:
        yield base_url


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Sum of the page's long tasks (> 50 ms on the main thread): one observer per page.
LONG_TASKS_JS = """() => { window.__lt = 0; if (window.__ltObserver) return;
  window.__ltObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__lt += e.duration; });
  window.__ltObserver.observe({type: 'longtask'}); }"""

# What one redraw costs the browser: Plotly.react of every live plot with its own data (a
# fresh datarevision forces the redraw), median of 3, in ms per plot key.
RENDER_JS = """async () => {
  const out = {};
  for (const d of document.querySelectorAll('div.live-plotly.js-plotly-plot')) {
    const times = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await Plotly.react(d, d.data.map((tr) => ({ ...tr })),
                         { ...d.layout, datarevision: Math.random() });
      times.push(performance.now() - t);
    }
    out[d.dataset.key] = times.sort((a, b) => a - b)[1];
  }
  return out;
}"""


def sample_rates(
    page: Any, pid: int, read: Callable[[], tuple[Any, int]], seconds: float
) -> dict[str, float]:
    """Poll every 100 ms: how often `read()`'s step value and plot update count change."""
    page.evaluate(LONG_TASKS_JS)
    step0, updates0 = read()
    cpu0 = cpu_seconds(pid)
    changes, last = 0, step0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        page.wait_for_timeout(100)
        step, _ = read()
        if step != last:
            changes, last = changes + 1, step
    elapsed = time.monotonic() - start
    step1, updates1 = read()
    return {
        "step_rate": changes / elapsed,
        "plot_rate": (updates1 - updates0) / elapsed,
        "steps_per_s": (int(step1) - int(step0)) / elapsed,
        "busy": page.evaluate("() => window.__lt") / 1e3 / elapsed,
        "server_cpu": (cpu_seconds(pid) - cpu0) / elapsed,
    }


def part_ii(seconds: float) -> None:
    from browser_utils import browser_page, server_pid
    from test_app_live_browser import (
        PLOT_JS,
        TABLE_JS,
        button,
        open_lab,
        press,
        step_of,
        wait_until,
    )

    ceiling = 1 / TICK_SECONDS
    print(f"(ii) live update rate in chromium over {seconds:.0f} s (tick ceiling {ceiling:.1f}/s)")
    with app_server() as base_url, browser_page(height=1500) as page:
        pid = server_pid(base_url)
        open_lab(page, base_url)
        press(page, "Play", then="Pause")
        wait_until(page, lambda: step_of(page) > 0, "the Lab to train")

        def lab() -> tuple[int, int]:
            return step_of(page), page.evaluate(PLOT_JS, "lab_view")["updates"]

        report("Lab 2-D", sample_rates(page, pid, lab, seconds), ceiling)
        start = time.monotonic()
        button(page, "Pause").click()
        button(page, "Play").wait_for(timeout=120_000)
        latency = time.monotonic() - start
        print(f"    Lab: Pause click → Play button shown {latency:.1f} s")
        row("(ii) Lab Pause click → paused on screen", f"{latency:.1f} s")
        render_cost(page, "Lab 2-D")

        # To Compare through the sidebar, in the same browser session.
        page.locator('[data-testid="stSidebarNav"]').get_by_text("Compare", exact=True).click()
        page.get_by_role("heading", name="Compare losses").wait_for(timeout=60_000)
        wait_until(page, lambda: page.evaluate(PLOT_JS, "compare_view_arcface"), "Compare", 90)
        press(page, "Play", then="Pause")

        def compare() -> tuple[str, int]:
            rows = page.evaluate(TABLE_JS) or [[], ["", "0"]]
            return rows[1][1], page.evaluate(PLOT_JS, "compare_view_arcface")["updates"]

        wait_until(page, lambda: compare()[0] not in ("0", ""), "Compare to train")
        report("Compare 6 losses", sample_rates(page, pid, compare, seconds), ceiling)
        button(page, "Pause").click()
        button(page, "Play").wait_for(timeout=120_000)
        render_cost(page, "Compare 6 losses")


def render_cost(page: Any, name: str) -> None:
    page.wait_for_timeout(1500)  # let the last updates settle
    cost = page.evaluate(RENDER_JS)
    slowest = max(cost, key=cost.get)
    print(
        f"    {name}: one redraw of all {len(cost)} plots in the browser {sum(cost.values()):.0f}"
        f" ms (slowest {slowest} {cost[slowest]:.0f} ms)"
    )
    row(f"(ii) {name}: browser redraw, all plots", f"{sum(cost.values()):.0f} ms")


def report(name: str, rates: dict[str, float], ceiling: float) -> None:
    print(
        f"    {name}: step counter {rates['step_rate']:.2f}/s, plot {rates['plot_rate']:.2f}/s,"
        f" {rates['steps_per_s']:.1f} training steps/s; page main thread busy "
        f"{100 * rates['busy']:.0f} %, server CPU {100 * rates['server_cpu']:.0f} %"
    )
    rate = min(rates["step_rate"], rates["plot_rate"])
    row(
        f"(ii) {name}: live updates (min of step, plot)",
        f"{rate:.2f}/s",
        f"goal ≥ {GOAL_RATE:g}/s (ceiling {ceiling:.1f})",
        rate >= GOAL_RATE,
    )


def play(pages: list) -> None:
    from test_app_live_browser import press, step_of, wait_until

    for page in pages:
        press(page, "Play", then="Pause")
    for page in pages:
        wait_until(page, lambda p=page: step_of(p) > 0, "every session to train")


def part_iii(seconds: float) -> None:
    from browser_utils import browser_pages, server_pid
    from test_app_live_browser import open_lab, step_of

    print(f"(iii) server RSS with sessions training ({seconds:.0f} s windows)")
    with app_server() as base_url:
        pid = server_pid(base_url)
        idle = rss_mb(pid)

        def playing_window(active: list) -> tuple[float, list[float]]:
            """Max RSS, and each active page's training steps/s."""
            first = [step_of(p) for p in active]
            peak, start = 0.0, time.monotonic()
            while time.monotonic() - start < seconds:
                peak = max(peak, rss_mb(pid))
                active[0].wait_for_timeout(500)
            elapsed = time.monotonic() - start
            return peak, [(step_of(p) - s) / elapsed for p, s in zip(active, first, strict=True)]

        with browser_pages(4, height=1200) as pages:
            for page in pages:  # load all four (paused), then play one, then all
                open_lab(page, base_url)
            loaded = rss_mb(pid)
            play(pages[:1])
            one, rate_one = playing_window(pages[:1])
            play(pages[1:])
            four, rate_four = playing_window(pages)
    per_extra = (four - one) / 3
    per_total = four / 4
    print(
        f"    no session {idle:.0f} MB; 4 pages loaded, paused {loaded:.0f} MB; 1 playing "
        f"{one:.0f} MB; 4 playing {four:.0f} MB (max over the window)"
    )
    print(f"    per extra session {per_extra:.0f} MB; server total / 4 sessions {per_total:.0f} MB")
    print(
        f"    training steps/s: 1 playing {rate_one[0]:.1f}; 4 playing "
        + ", ".join(f"{r:.1f}" for r in rate_four)
        + " (the four pages draw on this machine's cores too: see (v) for the server alone)"
    )
    row("(iii) RSS, no session / 1 / 4 playing", f"{idle:.0f} / {one:.0f} / {four:.0f} MB")
    row(
        "(iii) RSS per session (extra; total/4)",
        f"{per_extra:.0f}; {per_total:.0f} MB",
        f"goal ≤ {GOAL_SESSION_MB:g} MB",
        max(per_extra, per_total) <= GOAL_SESSION_MB,
    )


# A plotly.js that draws nothing: pages that still run every tick (the server builds and sends
# every figure) but cost the browser almost nothing, like clients on their own machines.
NO_DRAW_PLOTLY = (
    "window.Plotly = { react: async (d) => { d.on ??= () => {}; }, relayout: async () => {},"
    " purge: () => {}, Plots: { resize: () => {} } };"
)
NO_POST_SCRIPT_GC = "--runner.postScriptGC=false"


def part_v(seconds: float) -> None:
    """What the server alone sustains: 1 and 4 sessions with undrawn pages, per config."""
    print(f"(v) server capacity, pages that do not draw ({seconds:.0f} s windows)")
    for args in ((), (NO_POST_SCRIPT_GC,)):
        name = " ".join(args) or "default config"
        for sessions in (1, 4):
            tick, steps, cpu_ms, rss = capacity(args, sessions, seconds)
            print(
                f"    {name:<29} {sessions} session(s): {tick:.2f} ticks/s and {steps:.1f} "
                f"steps/s per session (slowest), server CPU {cpu_ms:.0f} ms per tick, RSS "
                f"{rss:.0f} MB"
            )
            row(
                f"(v) {sessions} undrawn session(s), {name}",
                f"{tick:.2f} ticks/s",
                f"{steps:.1f} steps/s; {cpu_ms:.0f} ms CPU/tick",
            )


def no_draw(route: Any) -> None:
    route.fulfill(body=NO_DRAW_PLOTLY, content_type="application/javascript")


def capacity(args: tuple[str, ...], sessions: int, seconds: float) -> tuple:
    """(ticks/s, steps/s) of the slowest session, server CPU ms per tick, max RSS."""
    from browser_utils import browser_pages, open_app, server_pid
    from test_app_live_browser import metric, step_of, wait_until

    with app_server(args) as base_url, browser_pages(sessions, height=1200) as pages:
        pid = server_pid(base_url)
        for page in pages:
            page.route("**/plotly*.js", no_draw)
            open_app(page, base_url, timeout_ms=60_000)
            wait_until(page, lambda p=page: metric(p, "step") is not None, "the Lab", 60)
        play(pages)
        pages[0].wait_for_timeout(3000)  # past the first ticks' warm-up
        last = [step_of(p) for p in pages]
        first, ticks = list(last), [0] * sessions
        cpu0, peak, start = cpu_seconds(pid), 0.0, time.monotonic()
        while time.monotonic() - start < seconds:
            for i, page in enumerate(pages):
                step = step_of(page)
                if step != last[i]:  # a tick shows a new step count
                    ticks[i], last[i] = ticks[i] + 1, step
            peak = max(peak, rss_mb(pid))
            pages[0].wait_for_timeout(50)
        elapsed = time.monotonic() - start
        cpu = cpu_seconds(pid) - cpu0
    slowest = min(range(sessions), key=lambda i: ticks[i])
    return (
        ticks[slowest] / elapsed,
        (last[slowest] - first[slowest]) / elapsed,
        1e3 * cpu / max(1, sum(ticks)),
        peak,
    )


# ----- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=["i", "ii", "iii", "iv", "v"])
    parser.add_argument("--seconds", type=float, default=20.0, help="browser sampling window")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as app/main.py does for the server
    # Streamlit calls made outside a script run (AppTest's setup) warn about it; harmless.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(
        logging.ERROR
    )
    load = os.getloadavg()
    print(f"CPUs {os.cpu_count()}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n")
    parts: dict[str, Callable[[], None]] = {
        "i": lambda: part_i(args.repeats),
        "iv": lambda: part_iv(args.repeats),
        "ii": lambda: part_ii(args.seconds),
        "iii": lambda: part_iii(args.seconds),
        "v": lambda: part_v(args.seconds),
    }
    for name, run in parts.items():
        if name in args.only:
            run()
            print()
    load = os.getloadavg()
    print(f"load average after: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n")
    width = max(len(r[0]) for r in ROWS) if ROWS else 10
    for measure, value, goal, verdict in ROWS:
        print(f"{measure:<{width}}  {value:>16}  {goal:<34} {verdict}")


if __name__ == "__main__":
    main()
