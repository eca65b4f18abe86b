"""Test app for ui.live_plot: figures whose data change on every tick of a fragment.

Run by tests/test_live_plot_browser.py; also handy by hand:
``streamlit run tests/apps/live_plot_demo.py``. Query parameters: ``n`` points,
``every`` seconds per tick, ``plots`` (``sphere,circle,compare,still,steady``: ``still`` never
changes, sent again on every tick; ``steady`` has new points under the same title on every
tick), ``long=1`` for a circle
title that wraps and names the tick (a text that changes on every update), e.g.
``?n=10000&every=0.2&plots=sphere`` for a stress run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

# The app's own entry point (app/main.py) has app/ on sys.path; this script lives elsewhere.
APP_DIR = Path(__file__).resolve().parents[2] / "app"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

from ui.live_plot import live_plotly  # noqa: E402

N = int(st.query_params.get("n", 2000))
EVERY = float(st.query_params.get("every", 0.5))
PLOTS = set(st.query_params.get("plots", "sphere,circle,compare").split(","))
LONG = st.query_params.get("long") == "1"

rng = np.random.default_rng(0)
BASE = rng.normal(size=(N, 3)).astype(np.float32)
BASE /= np.linalg.norm(BASE, axis=1, keepdims=True)
LABELS = rng.integers(0, 10, N).astype(np.int8)


def rotated(points: np.ndarray, tick: int) -> np.ndarray:
    """The points turned about z by 0.2 rad per tick: every tick is new data."""
    a = 0.2 * tick
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return (points @ rot.T).astype(np.float32)


def sphere(points: np.ndarray, labels: np.ndarray, title: str) -> go.Figure:
    fig = go.Figure(
        go.Scatter3d(
            x=points[:, 0],
            y=points[:, 1],
            z=points[:, 2],
            mode="markers",
            marker={"size": 2, "color": labels, "colorscale": "Turbo"},
        )
    )
    axis = {"range": [-1.2, 1.2], "autorange": False}
    fig.update_layout(
        title=title,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        scene={"xaxis": axis, "yaxis": axis, "zaxis": axis, "aspectmode": "cube"},
    )
    return fig


def circle(tick: int) -> go.Figure:
    angles = np.linspace(0, 2 * np.pi, 400, dtype=np.float32) + 0.1 * tick
    radius = (1 + 0.05 * np.sin(7 * angles + tick)).astype(np.float32)
    fig = go.Figure(
        go.Scatter(x=radius * np.cos(angles), y=radius * np.sin(angles), mode="markers")
    )
    words = " with a title long enough to wrap, twice over, on a plot of any width" * 2
    fig.update_layout(
        title=f"circle tick {tick}{words if LONG else ''}",
        margin={"l": 40, "r": 10, "t": 30, "b": 30},
        xaxis={"range": [-1.3, 1.3]},
        yaxis={"range": [-1.3, 1.3]},
    )
    return fig


st.session_state.setdefault("tick", 0)


@st.fragment(run_every=EVERY)
def live() -> None:
    st.session_state.tick += 1
    tick = st.session_state.tick
    st.caption(f"tick {tick}")
    if "sphere" in PLOTS:
        live_plotly(sphere(rotated(BASE, tick), LABELS, f"sphere tick {tick}"), key="sphere")
    if "circle" in PLOTS:
        live_plotly(circle(tick), key="circle", height=360)
    if "still" in PLOTS:
        live_plotly(circle(0), key="still", height=300)
    if "steady" in PLOTS:
        live_plotly(circle(tick).update_layout(title="the same title"), key="steady", height=300)
    if "compare" in PLOTS:
        left, right = st.columns(2)
        small = BASE[:500]
        with left:
            live_plotly(
                sphere(rotated(small, tick), LABELS[:500], f"A tick {tick}"),
                key="cmp_a",
                height=300,
                camera_key="compare",
            )
        with right:
            live_plotly(
                sphere(rotated(small, -tick), LABELS[:500], f"B tick {tick}"),
                key="cmp_b",
                height=300,
                camera_key="compare",
            )


live()
