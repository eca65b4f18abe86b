"""One colour per loss, the same on every page: its curve in a comparison, its line in the
training curves and the title of its panel, so a student can follow "the red one" across
figures. Class colours (figures.style.PALETTE) are another matter: they mark digits or people.
"""

from __future__ import annotations

import hashlib

import plotly.graph_objects as go

# Strong, distinguishable hues; the family resemblances are on purpose (ArcFace and its
# sub-centre variant are reds, the SphereFace forms purples). None is the band grey.
LOSS_COLORS: dict[str, str] = {
    "softmax": "#334155",
    "normface": "#1f77b4",
    "sphereface": "#7e3fa8",
    "sphereface-arccos": "#b07cd8",
    "cosface": "#2ca02c",
    "arcface": "#d62728",
    "subcenter-arcface": "#f0627a",
    "combined": "#ff7f0e",
    "center": "#8c564b",
    "adaface": "#17becf",
    "magface": "#bcbd22",
    "elasticface-arc": "#e377c2",
    "elasticface-cos": "#637939",
    "curricularface": "#393b79",
    "adacos": "#0f766e",
}
# For a loss added later without a colour here: a stable pick from these, by its name.
_SPARE = ("#4c1d95", "#9a3412", "#155e75", "#3f6212", "#831843", "#1e3a8a")


def loss_color(loss: str) -> str:
    """The loss's colour ('#rrggbb'); a loss without an entry gets a stable spare colour."""
    if loss in LOSS_COLORS:
        return LOSS_COLORS[loss]
    digest = hashlib.sha256(loss.encode()).digest()
    return _SPARE[digest[0] % len(_SPARE)]


def title_panel(fig: go.Figure, loss: str, text: str) -> go.Figure:
    """Title `fig` as one loss's panel among several: `text` in the loss's colour, the rest of
    the title's layout (position, automargin) kept. Read and written as JSON, because an
    unvalidated figure (style.fast_figure) would replace its whole title by a plain update."""
    title = fig.layout.to_plotly_json().get("title")
    title = dict(title) if isinstance(title, dict) else {}
    font = dict(title.get("font") or {})
    font["color"] = loss_color(loss)
    fig.layout.title = {**title, "text": text, "font": font}
    return fig
