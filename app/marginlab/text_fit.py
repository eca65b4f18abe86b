"""Text that fits: a figure's caption taken out to be shown as page text, and the browser-side
script (fit_text.js) that wraps titles, axis titles, panel titles and legend entries to the
width a figure really gets.

Why in the browser: a figure is a third of a 1280 px laptop screen on the Compare page and a
whole window when exported; only the browser knows which. Why captions go out of the figure:
plotly does not wrap a subtitle, and three wrapped lines inside a small panel take its plot's
height, where page text wraps for free.

A module of its own, outside figures/, because the app's plot component imports it on every
page: importing marginlab.figures would load the builders and torch with it.
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path

import plotly.graph_objects as go

FIT_TEXT_JS = Path(__file__).with_name("fit_text.js")


@lru_cache(maxsize=1)
def fit_text_js() -> str:
    """The source of fit_text.js (function declarations only; nothing runs on load)."""
    return FIT_TEXT_JS.read_text(encoding="utf-8")


def split_caption(fig: go.Figure) -> str | None:
    """Remove the figure's subtitle (its caption) and return its text, or None if it had none.

    Read from the layout's JSON: a figure built unvalidated (style.fast_figure) and then given
    a plain-string title holds that string, where attribute access would fail. Such a title
    becomes {"text": ...}: plotly.js 3 dropped string titles ("container is not an object").
    """
    title = fig.layout.to_plotly_json().get("title")
    if isinstance(title, str):
        fig.layout.title = {"text": title}
        return None
    if not isinstance(title, dict):
        return None
    text = (title.get("subtitle") or {}).get("text")
    if text:
        fig.layout.title = {key: value for key, value in title.items() if key != "subtitle"}
    return text or None


def fit_post_script() -> str:
    """JavaScript for plotly's ``to_html(post_script=...)``: fit the texts once drawn, and again
    whenever the window (and so the responsive figure) changes size."""
    return (
        fit_text_js()
        + "\nconst fitGd = document.getElementById('{plot_id}');"
        + "\nconst fitSrc = fitSource(fitGd.layout, fitGd.data);"
        + "\nfitFigure(fitGd, fitSrc);"
        + "\nlet fitTimer = 0;"
        + "\nwindow.addEventListener('resize', () => {"
        + " clearTimeout(fitTimer); fitTimer = setTimeout(() => fitFigure(fitGd, fitSrc), 150); });"
    )


def caption_html(caption: str | None) -> str:
    """The caption as an HTML paragraph under an exported figure (empty without one)."""
    if not caption:
        return ""
    style = "font: 15px sans-serif; color: #334155; max-width: 70em; margin: 4px 16px 16px"
    return f'<p class="figure-caption" style="{style}">{html.escape(caption)}</p>'
