"""The page's look: a compact top and metric labels that wrap on every page; presenter mode
(larger numbers than labels, larger type, figures and markers, the sidebar collapsed) for a
classroom projector."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

PRESENTER_FONT = 20
PRESENTER_MARKER_GROWTH = 1.8

# Every page: Streamlit's 6rem above the title left a large empty band (3.5rem still clears
# the header's buttons), and a metric label is wrapped instead of cut ("measured m…"). The live
# panel (ui.live_page) never takes Streamlit's stale look (faded to a third while the run that
# resends an element is under way): the live tick resends its plots, metrics and tables every
# fraction of a second, and each keeps the newest it has until then. Faded, Compare's lower
# plots blinked on every tick, which flickers on a projector (bench_app d).
PAGE_CSS = """
[data-testid="stMainBlockContainer"] { padding-top: 3.5rem; }
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] * {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  height: auto !important;
}
.st-key-live-panel [data-testid="stElementContainer"][data-stale="true"] {
  opacity: 1 !important; transition: none !important;
}
"""
# Presenter mode: the numbers are what the room reads, so they grow most; labels a little.
# A metric's label and value are drawn in <p> elements too: their rules name stMain as well,
# so that they outrank the paragraph rule (which otherwise drew both at 1.3rem).
PRESENTER_CSS = """
[data-testid="stMain"] p, [data-testid="stMain"] li { font-size: 1.3rem; }
[data-testid="stMain"] [data-testid="stMetricLabel"],
[data-testid="stMain"] [data-testid="stMetricLabel"] * { font-size: 1.1rem; }
[data-testid="stMain"] [data-testid="stMetricValue"],
[data-testid="stMain"] [data-testid="stMetricValue"] * { font-size: 2.4rem; }
[data-testid="stMain"] h1 { font-size: 3rem; }
"""


def sidebar_state(presenter: bool) -> str:
    """st.set_page_config's initial_sidebar_state: presenter mode collapses the sidebar (a
    change of it on a rerun collapses or reopens it; its arrow still opens it by hand)."""
    return "collapsed" if presenter else "auto"


def page_css() -> None:
    """The CSS every page gets (call once per run, from the entry script)."""
    st.html(f"<style>{PAGE_CSS}</style>")


def presenter_css(on: bool) -> None:
    """Scale the page's own text up (Streamlit has no runtime font-size option)."""
    if on:
        st.html(f"<style>{PRESENTER_CSS}</style>")


def styled(fig: go.Figure, presenter: bool) -> go.Figure:
    """The figure with projector-sized fonts and markers when presenter mode is on."""
    if not presenter:
        return fig
    fig.update_layout(font={"size": PRESENTER_FONT})
    for trace in fig.data:
        marker = getattr(trace, "marker", None)
        size = getattr(marker, "size", None) if marker is not None else None
        if isinstance(size, int | float):
            trace.marker.size = size * PRESENTER_MARKER_GROWTH
    return fig


def figure_height(presenter: bool) -> int:
    """Plot height in px: taller on a projector, where the sidebar's width goes to the plots."""
    return 640 if presenter else 540
