"""ui.figure_cache: a picture the sessions of a shared run draw alike is built once for all."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from app_figures import live_figures
from ui.figure_cache import SHARED_FIGURES, FigureCache, Same, frozen, prepare

APP = Path(__file__).resolve().parents[1] / "app"


def figure(title: str = "t") -> go.Figure:
    return go.Figure(
        go.Scatter(x=np.arange(3.0), y=np.ones(3)),
        layout={"title": {"text": title, "subtitle": {"text": "what it shows"}}},
    )


def test_sessions_asking_at_once_get_one_build():
    cache, calls, results = FigureCache(), [], []

    def build() -> go.Figure:
        calls.append(1)
        time.sleep(0.2)  # the others arrive while this one builds
        return figure()

    threads = [
        threading.Thread(target=lambda: results.append(cache.get(("k", 1), build)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and cache.built == 1 and cache.reused == 7
    assert len({id(result) for result in results}) == 1
    assert results[0].caption == "what it shows" and "subtitle" not in results[0].json


def test_keys_hold_snapshots_by_identity():
    a, b = np.zeros(3), np.zeros(3)  # equal values, different objects
    assert Same(a) == Same(a) and hash(Same(a)) == hash(Same(a))
    assert Same(a) != Same(b)
    assert frozen({"s": 16.0, "loss": "arcface"}) == frozen({"loss": "arcface", "s": 16.0})
    cache = FigureCache()
    cache.get((Same(a),), lambda: figure("a"))
    assert cache.get((Same(b),), lambda: figure("b")).json != cache.get((Same(a),), figure).json
    assert cache.built == 2


def test_a_failed_build_lets_the_next_session_build():
    cache = FigureCache()

    def fail() -> go.Figure:
        raise RuntimeError("no figure")

    with pytest.raises(RuntimeError):
        cache.get("k", fail)
    assert cache.get("k", figure).json == prepare(figure()).json
    assert cache.get("none", lambda: None) is None and cache.get("none", figure) is None


def test_the_oldest_entries_go_first_within_both_bounds():
    size = len(prepare(figure("0")).json)
    by_count = FigureCache(max_entries=3)
    for k in range(5):
        by_count.get(k, lambda k=k: figure(str(k)))
    assert len(by_count) == 3
    by_count.get(2, figure)  # used again: now the newest
    by_count.get(5, lambda: figure("5"))
    assert by_count.get(2, lambda: figure("new")).json == prepare(figure("2")).json
    by_bytes = FigureCache(max_bytes=2 * size + size // 2)
    for k in range(4):
        by_bytes.get(k, lambda k=k: figure(str(k)))
    assert len(by_bytes) == 2


def open_page(script: str, query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(APP / script), default_timeout=240)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


@pytest.mark.parametrize(
    ("script", "query", "slot", "view"),
    [
        ("views/lab.py", {}, "lab", "lab_view"),
        ("views/lessons.py", {"lesson": "03-arcface-margin"}, "lesson", "lesson_view_arcface"),
    ],
)
def test_two_sessions_on_one_shared_run_build_each_picture_once(script, query, slot, view):
    """Two students open the same link: the second gets the first's pictures without
    building them; once it moves the margin, its pictures are its own."""
    first = open_page(script, query)
    assert not first.exception
    drawn = live_figures(first)
    built = SHARED_FIGURES.built
    second = open_page(script, query)
    assert not second.exception
    assert first.session_state[slot].handle.target is second.session_state[slot].handle.target
    assert view in drawn and live_figures(second) == drawn
    assert SHARED_FIGURES.built == built  # nothing built again
    second.slider(key="control_m2").set_value(0.45).run()
    assert not second.exception
    assert live_figures(second)[view] != drawn[view]
    assert SHARED_FIGURES.built > built
