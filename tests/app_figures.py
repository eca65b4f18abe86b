"""What AppTest can read of the figures a page sends through ui.live_plot."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest


def live_figures(at: AppTest) -> dict[str, dict]:
    """The figures the live_plotly component received, by key (AppTest cannot render them)."""
    figures = {}
    for element in at.get("bidi_component"):
        payload = json.loads(element.proto.bytes)
        figures[payload["key"]] = payload["fig"]
    return figures
