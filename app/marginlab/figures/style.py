"""Shared look of every figure: class colours, the grey of margin bands, names, small helpers.

One palette for all figures, so "class 3" is the same colour on the circle, the sphere, the
histograms and in the side-by-side comparison. Grey is reserved for margin bands: no class
colour is grey.
"""

from __future__ import annotations

import colorsys
import copy
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from marginlab.losses.adaptive_curves import NORM_DEPENDENT
from marginlab.losses.registry import LOSS_LABELS, REGISTRY, loss_spec
from marginlab.params import MARGIN_PARAMS

# Tableau-10 without its grey, plus three darker hues: 12 distinguishable class colours.
PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
    "#637939",
    "#7b4173",
)
BAND_GREY = "#a6a6a6"
MISCLASSIFIED = "#111111"
UIREVISION = "marginlab"  # constant: lets plotly keep the user's zoom/camera across updates
TEMPLATE = "marginlab"  # plotly_white, see _register_template

# Display names: the registry's labels (losses/registry.py), under the name the pages import.
LOSS_NAMES: dict[str, str] = LOSS_LABELS
MARGIN_KEYS = MARGIN_PARAMS


def class_colors(n: int) -> list[str]:
    """n class colours: the palette first, then evenly spread hues (golden ratio) beyond it."""
    colors = list(PALETTE[:n])
    for k in range(len(colors), n):
        hue = (0.11 + 0.618034 * k) % 1.0
        r, g, b = colorsys.hls_to_rgb(hue, 0.45, 0.65)
        colors.append(f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}")
    return colors


def rgba(color: str, alpha: float) -> str:
    """'#rrggbb' → 'rgba(r,g,b,alpha)' (for pale region fills)."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def lighten(color: str, amount: float) -> str:
    """Mix a '#rrggbb' colour with white (amount 0 → same, 1 → white)."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    r, g, b = (round(v + (255 - v) * amount) for v in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


def class_names(n: int, names: Sequence[str] | None = None) -> list[str]:
    """Legend names for n classes ("class 0", … unless given, e.g. digit names)."""
    if names is not None:
        return [str(x) for x in names][:n] + [f"class {k}" for k in range(len(names), n)]
    return [f"class {k}" for k in range(n)]


def f32(x) -> np.ndarray:
    """Float32 numpy array, NaN/Inf replaced by 0: plotly sends it base64 (never .tolist())."""
    return np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def margin_of(params: Mapping, state: Mapping[str, float] | None = None) -> dict:
    """The margin keywords (m1, m2, m3, sphere_m, lam, policy) present in `params`; for the
    post-2020 family also `adaptive`: the head's values and running `state` (a snapshot's),
    from which geometry.region_labels rebuilds the head."""
    margin = {k: params[k] for k in MARGIN_KEYS if k in params}
    spec = REGISTRY.get(params.get("loss", ""))
    if spec is not None and spec.adaptive:
        values = {name: params[name] for name in spec.used if name in params}
        margin["adaptive"] = {**values, **(state or {})}
    return margin


def at_chosen_norm(margin: Mapping, loss: str, features: np.ndarray) -> tuple[dict, str]:
    """`margin` with the norm the circle or sphere draws a norm-dependent margin at (the
    probe's median ‖x‖), and the sentence that says so ("" for the other losses)."""
    if "adaptive" not in margin or loss not in NORM_DEPENDENT:
        return dict(margin), ""
    norms = np.linalg.norm(np.asarray(features, dtype=np.float64), axis=1)
    norms = norms[np.isfinite(norms)]
    norm = float(np.median(norms)) if norms.size else 1.0
    text = f" Bands drawn at ‖x‖ = {norm:.3g}, the probe's median norm: this margin depends on it."
    return {**margin, "norm": norm}, text


def margin_label(loss: str, s: float | None = None, **margin) -> str:
    """'ArcFace (s = 30, m = 0.5 rad)': the loss and only the parameters it uses (registry)."""
    spec = REGISTRY.get(loss)
    return spec.describe(s, **margin) if spec is not None else str(loss)


def angular_margin(loss: str, spacing: float | None = None, **margin) -> float | None:
    """The requested margin as an ANGLE (radians), or None: the registry's `requested_margin`
    (ArcFace's m2; other margins only at a given neighbour `spacing`)."""
    return loss_spec(loss).requested_margin(margin, spacing)


def discrete_colorscale(colors: Sequence[str]) -> list[list]:
    """A stepped colourscale: value k (0-based) in [−0.5, len−0.5] gets colors[k], no blending."""
    k = len(colors)
    scale: list[list] = []
    for i, c in enumerate(colors):
        scale += [[i / k, c], [(i + 1) / k, c]]
    return scale


# Legends go under the plot, in rows, anchored to the figure's bottom edge (yref "container"):
# plotly then grows the bottom margin to fit them, below the x-axis title, and the plot keeps
# its width (an equal-aspect circle or sphere would shrink beside a legend on the right).
BOTTOM_LEGEND: dict = {
    "itemsizing": "constant",
    "orientation": "h",
    "yref": "container",
    "y": 0.0,
    "yanchor": "bottom",
    "xref": "container",
    "x": 0.0,
    "xanchor": "left",
}
# Its title on a row of its own: beside the entries plotly.js lets the first row overflow.
CLASS_LEGEND: dict = {**BOTTOM_LEGEND, "title": {"text": "Classes", "side": "top"}}


# The title hangs from the figure's top edge (yref "container"), so it can never leave the
# figure; the top margin below it is made to fit what it wraps to. plotly.js's own title
# automargin is off: with a subtitle it oscillated ("Too many auto-margin redraws", up to 1.5 s
# a redraw of the training curves in chromium) and still left titles above the figure.
TITLE_PAD_PX = 8  # from the figure's top edge to the title
TITLE_GAP_PX = 10  # from the title (and subtitle) to what is below it
TITLE_LINE_PX = 24  # a title line at the template's title font, for the first estimate
SUBTITLE_LINE_PX = 18


def title_margin(title: str, subtitle: str | None) -> int:
    """A first estimate of the top margin a title and subtitle need (one line each); in the
    browser, fit_text.js measures the wrapped texts and sets the margin they really take."""
    lines = TITLE_LINE_PX * (1 + title.count("<br>")) if title else 0
    if subtitle:
        lines += SUBTITLE_LINE_PX * (1 + subtitle.count("<br>"))
    return TITLE_PAD_PX + lines + TITLE_GAP_PX


def base_layout(title: str, subtitle: str | None = None, **extra) -> dict:
    """Layout shared by all figures: title (+ subtitle), white template, constant uirevision.

    The title sits at the figure's top edge and the plot area below it; in the browser the app
    wraps long texts to the figure's width and sets the top margin to what the wrapped title,
    subtitle and any panel titles take (fit_text.js). Axes make their own room (automargin) for
    wrapped titles and long tick labels, and the legend sits under it all.
    """
    layout: dict = {
        "title": {
            "text": title,
            "x": 0.01,
            "xanchor": "left",
            "yref": "container",
            "y": 1.0,
            "yanchor": "top",
            "automargin": False,
            "pad": {"t": TITLE_PAD_PX},
        },
        "template": TEMPLATE,
        "uirevision": UIREVISION,
        "margin": {"l": 60, "r": 20, "t": title_margin(title, subtitle), "b": 40},
        "legend": BOTTOM_LEGEND,
    }
    if subtitle:
        layout["title"]["subtitle"] = {"text": subtitle}
    layout.update(extra)
    for name, axis in layout.items():
        if name[:5] in ("xaxis", "yaxis") and isinstance(axis, dict):
            layout[name] = {"automargin": True, **axis}
    return layout


def empty_legend_entry(name: str, color: str, *, symbol: str = "square", three_d=False) -> dict:
    """A legend-only entry (no data) for things drawn without a legend of their own."""
    coords = {"x": f32([]), "y": f32([])} | ({"z": f32([])} if three_d else {})
    return trace(
        "scatter3d" if three_d else "scatter",
        **coords,
        mode="markers",
        marker={"color": color, "size": 10, "symbol": symbol},
        name=name,
        hoverinfo="skip",
    )


def trace(kind: str, **props) -> dict:
    """A trace as a plain dict (see `fast_figure`)."""
    return {"type": kind, **props}


def degree_axis(title: str) -> dict:
    """An angle axis over 0–180° with a tick every 30° (20°, 60°... read off the grid)."""
    return {"title": {"text": title}, "range": [0, 180], "tickvals": list(range(0, 181, 30))}


def coords(points: np.ndarray) -> dict:
    """A trace's x, y (and z) from the columns of (N, 2) or (N, 3) points, as float32."""
    points = np.asarray(points)
    return {axis: f32(points[:, k]) for k, axis in enumerate("xyz"[: points.shape[1]])}


def line_trace(x, y, name: str, **props) -> dict:
    """A line through float32 points (`props`: its style, hover text, axes, legend group)."""
    return trace("scatter", x=f32(x), y=f32(y), mode="lines", name=name, **props)


def area(x, y, color: str, alpha: float, name: str, **props) -> dict:
    """A filled outline without line or hover (fill="toself"): a region or a margin band."""
    return trace(
        "scatter",
        x=f32(x),
        y=f32(y),
        fill="toself",
        mode="none",
        fillcolor=rgba(color, alpha),
        name=name,
        hoverinfo="skip",
        **props,
    )


def _register_template() -> None:
    """plotly_white, with tick labels drawn as they are: by default ("hide past div")
    plotly.js measures every tick label after each draw to hide those past the figure's edge,
    12 ms of a lesson tab's update in chromium; our axes make room for their labels
    (automargin), so none goes past it."""
    template = go.layout.Template(pio.templates["plotly_white"])
    template.layout.xaxis.ticklabeloverflow = "allow"
    template.layout.yaxis.ticklabeloverflow = "allow"
    pio.templates[TEMPLATE] = template


_register_template()


@lru_cache(maxsize=1)
def _template_json() -> dict:
    return pio.templates[TEMPLATE].to_plotly_json()


def fast_figure(traces: list, layout: dict) -> go.Figure:
    """A Figure built WITHOUT plotly.py's per-property validation.

    Validation and the template's deep copy cost ~50 ms for a 10k-point sphere on a slow
    core, most of a live tick; unvalidated it takes ~2 ms. The test suite validates the output
    of every builder instead (go.Figure(fig.to_dict()) in tests/test_figures.py), so a typo in
    a property name still fails loudly, just not at run time.
    """
    layout = {**layout, "template": copy.deepcopy(_template_json())}
    data = [t if isinstance(t, dict) else t.to_plotly_json() for t in traces]
    return go.Figure(data=data, layout=layout, _validate=False)


def subplot_row(titles: Sequence[str], spacing: float = 0.07) -> tuple[dict, list[tuple[str, str]]]:
    """Layout for n side-by-side panels without make_subplots (which validates and is slow).

    Returns the layout entries (xaxis…, yaxis…, panel-title annotations) and each panel's
    (xaxis, yaxis) trace references, e.g. ("x2", "y2").
    """
    n = len(titles)
    width = (1.0 - spacing * (n - 1)) / n
    layout: dict = {"annotations": []}
    refs = []
    for k, text in enumerate(titles):
        suffix = "" if k == 0 else str(k + 1)
        x0 = k * (width + spacing)
        domain = [max(round(x0, 9), 0.0), min(round(x0 + width, 9), 1.0)]
        layout[f"xaxis{suffix}"] = {"domain": domain, "anchor": f"y{suffix}"}
        layout[f"yaxis{suffix}"] = {"anchor": f"x{suffix}"}
        layout["annotations"].append(
            {"text": text, "x": x0 + width / 2, "y": 1.0, "xref": "paper", "yref": "paper",
             "xanchor": "center", "yanchor": "bottom", "showarrow": False, "font": {"size": 14}}
        )  # fmt: skip
        refs.append((f"x{suffix}", f"y{suffix}"))
    return layout, refs
