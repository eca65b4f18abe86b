"""Presenter mode: larger type and markers for a classroom projector."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

PRESENTER_FONT = 20
PRESENTER_MARKER_GROWTH = 1.8


def presenter_css(on: bool) -> None:
    """Scale the page's own text up (Streamlit has no runtime font-size option)."""
    if on:
        st.html(
            "<style>"
            "[data-testid=stMain] p, [data-testid=stMain] li, [data-testid=stMetricValue]"
            " { font-size: 1.35rem; }"
            "[data-testid=stMain] h1 { font-size: 3.2rem; }"
            "</style>"
        )


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
    return 640 if presenter else 540
