"""Side-by-side small multiples, self-contained HTML export, and an animated HTML replay of a
run's snapshot history. Everything exported opens offline (plotly.js is embedded)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from marginlab.figures.leads import lead_histogram_figure
from marginlab.figures.sphere import band_width_hint, projection_figure, sphere_figure
from marginlab.figures.style import UIREVISION, base_layout, fast_figure, margin_label, margin_of
from marginlab.figures.views import circle_figure, raw_feature_figure
from marginlab.geometry.regions import pca_to_3d, subdivisions_for_band
from marginlab.text_fit import caption_html, fit_post_script, split_caption

_THREE_D = {"mesh3d", "scatter3d", "cone", "surface", "isosurface", "volume", "streamtube"}
HTML_CONFIG = {"displaylogo": False, "responsive": True}


def _is_3d(fig: go.Figure) -> bool:
    return any(trace.type in _THREE_D for trace in fig.data)


def small_multiples(
    figures: Sequence[go.Figure],
    titles: Sequence[str] | None = None,
    cols: int = 3,
    *,
    title: str = "Side by side",
    row_height: int = 420,
) -> go.Figure:
    """Put K figures in a grid with one legend, shared axes and the same class colours.

    2-D figures share their x and y axes (same ranges, equal aspect kept where the source had
    it); 3-D figures become scenes with the source's ranges, cube aspect and camera. Legend
    entries repeated across panels are shown once (clicking one toggles it in every panel).
    Source shapes, annotations and secondary y axes are not carried over.
    """
    figures = list(figures)
    cols = max(1, min(cols, len(figures)))
    rows = math.ceil(len(figures) / cols)
    kinds = ["scene" if _is_3d(f) else "xy" for f in figures]
    shared = all(k == "xy" for k in kinds)
    gap_x, gap_y = 0.03, 0.08
    width, height = (1 - gap_x * (cols - 1)) / cols, (1 - gap_y * (rows - 1)) / rows
    layout: dict = {"annotations": []}
    traces: list = []
    seen: set[str] = set()
    scene_n = xy_n = 0
    for k, (fig, kind) in enumerate(zip(figures, kinds, strict=True)):
        row, col = divmod(k, cols)
        x0 = col * (width + gap_x)
        y1 = 1 - row * (height + gap_y)
        domain = {"x": _span(x0, x0 + width), "y": _span(y1 - height, y1)}
        if titles is not None and k < len(titles):
            layout["annotations"].append(
                {"text": titles[k], "x": x0 + width / 2, "y": y1, "xref": "paper",
                 "yref": "paper", "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                 "font": {"size": 14}}
            )  # fmt: skip
        if kind == "scene":
            scene_n += 1
            where = {"scene": "scene" if scene_n == 1 else f"scene{scene_n}"}
            layout[where["scene"]] = {**fig.layout.scene.to_plotly_json(), "domain": domain}
        else:
            xy_n += 1
            suffix = "" if xy_n == 1 else str(xy_n)
            where = {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}
            for axis, other in (("xaxis", "y"), ("yaxis", "x")):
                source = fig.layout[axis].to_plotly_json()
                for key in ("domain", "anchor", "matches", "scaleanchor", "overlaying", "side"):
                    source.pop(key, None)
                outer = col == 0 if axis == "yaxis" else k + cols >= len(figures)
                if not outer:
                    source.pop("title", None)  # shared axes: label the outer panels only
                source.update(domain=domain[axis[0]], anchor=f"{other}{suffix}")
                if shared and xy_n > 1:
                    source["matches"] = axis[0]  # zooming one panel zooms all
                layout[f"{axis}{suffix}"] = source
            if fig.layout.yaxis.scaleanchor:
                layout[f"yaxis{suffix}"].update(scaleanchor=f"x{suffix}", scaleratio=1)
        for source_trace in fig.data:
            spec = source_trace.to_plotly_json()
            for key in ("xaxis", "yaxis", "scene"):
                spec.pop(key, None)
            group = spec.get("legendgroup") or spec.get("name") or ""
            if spec.get("showlegend") is not False and source_trace.type != "mesh3d":
                if group in seen:
                    spec["showlegend"] = False  # one legend entry toggles every panel
                seen.add(group)
            traces.append({**spec, **where})
    legend = figures[0].layout.legend.to_plotly_json() if figures else {}
    layout.update(
        base_layout(title, legend=legend, height=row_height * rows, margin={"t": 90, "b": 40})
    )
    return fast_figure(traces, layout)


def _span(lo: float, hi: float) -> list[float]:
    """A domain inside [0, 1] (sums of floats may step a hair outside it)."""
    return [min(max(round(lo, 9), 0.0), 1.0), min(max(round(hi, 9), 0.0), 1.0)]


VIEW_BUILDERS: dict[str, Callable[..., go.Figure]] = {
    "circle": circle_figure,
    "sphere": sphere_figure,
    "raw": raw_feature_figure,
    "projection": projection_figure,
    "histogram": lead_histogram_figure,
}


def compare_views(
    view: str,
    runs: Sequence[Mapping],
    *,
    titles: Sequence[str] | None = None,
    cols: int = 3,
    title: str | None = None,
) -> go.Figure:
    """The same view for K runs side by side (e.g. the six losses of the comparison page).

    Each run is the keyword dict of the view's builder (features, labels, weights, loss, s and
    the margin keywords); panel titles default to the loss and its parameters.
    """
    build = VIEW_BUILDERS[view]
    figures = [build(**run) for run in runs]
    if titles is None:
        titles = [margin_label(run["loss"], run.get("s"), **margin_of(run)) for run in runs]
    return small_multiples(figures, titles, cols, title=title or f"{view} view, side by side")


def figure_html(fig: go.Figure, *, auto_play: bool = True) -> str:
    """A self-contained HTML page of `fig` (plotly.js embedded, no network needed to open it):
    its caption as a paragraph under it, its long texts wrapped to the window (text_fit)."""
    fig = go.Figure(fig)  # a copy: the caller's figure keeps its caption
    caption = split_caption(fig)
    page = fig.to_html(
        include_plotlyjs=True,
        full_html=True,
        config=HTML_CONFIG,
        auto_play=auto_play,
        post_script=fit_post_script(),
    )
    return page.replace("</body>", caption_html(caption) + "</body>", 1)


def export_name(page: str, label: str, step: int, kind: str, suffix: str = "html") -> str:
    """A file name that says what the file is: 'marginlab-lab-arcface-step300-replay.html'
    (page, loss label, training step, kind), safe on every file system."""
    parts = [page, label, f"step{int(step)}", kind]
    slug = "-".join(re.sub(r"[^a-z0-9]+", "-", str(part).lower()).strip("-") for part in parts)
    return f"marginlab-{slug}.{suffix}"


def figure_to_html(fig: go.Figure, path: str | os.PathLike) -> Path:
    """Write `figure_html(fig)` to `path`."""
    path = Path(path)
    path.write_text(figure_html(fig), encoding="utf-8")
    return path


def _snapshot_kwargs(snap: Mapping, defaults: Mapping) -> dict:
    """Builder keywords of one snapshot: its own loss/s/margin first, then the defaults."""
    params = {**defaults, **{k: snap[k] for k in ("loss", "s") if k in snap}}
    params.update(margin_of(snap))
    if "loss" not in params:
        raise ValueError("replay_html needs the loss (in the snapshots or as loss=...)")
    params.setdefault("s", 1.0)
    return params


def replay_html(
    snapshots: Sequence[Mapping],
    path: str | os.PathLike | None = None,
    **options,
) -> str:
    """`replay_figure` as a self-contained, offline HTML page; written to `path` if given."""
    html = figure_html(replay_figure(snapshots, **options), auto_play=False)
    if path is not None:
        Path(path).write_text(html, encoding="utf-8")
    return html


def replay_figure(
    snapshots: Sequence[Mapping],
    *,
    max_frames: int = 60,
    max_points: int = 3_000,
    frame_ms: int = 250,
    names: Sequence[str] | None = None,
    title: str = "Training replay",
    requested: Mapping | None = None,
    **defaults,
) -> go.Figure:
    """An animated replay of a run's snapshots (plotly frames + slider + play button).

    Each snapshot is a dict with "step", "features" (N, d), "labels", "weights" (C, d) and
    optionally its margin ("loss", "s", "m1", "m2", …; `defaults` fill in what is missing).
    `requested` (loss, s and margin keywords) draws every frame with those instead, as the
    lab's views do: the margin asked for, not the warm-up's partial one a snapshot was taken
    with (which is near zero in early frames: bands that were missing from the replay).
    d = 2 replays the circle view, d = 3 the sphere, d > 3 a PCA projection fixed by the last
    snapshot (so the view does not jump). At most `max_frames` evenly spaced snapshots and
    `max_points` points (the same seeded subset in every frame) keep the file small.
    """
    snaps = list(snapshots)
    if not snaps:
        raise ValueError("replay_html needs at least one snapshot")
    if len(snaps) > max_frames:
        snaps = [snaps[i] for i in np.linspace(0, len(snaps) - 1, max_frames).round().astype(int)]
    dim = np.asarray(snaps[-1]["features"]).shape[1]
    fixed: dict = {"names": names}
    if dim == 3:
        widths = []
        for snap in snaps:
            p = _snapshot_kwargs(snap, defaults)
            widths.append(subdivisions_for_band(band_width_hint(p["loss"], **margin_of(p))))
        fixed["subdivisions"] = max(widths)  # one mesh for all frames
    elif dim > 3:
        fixed["projection"] = pca_to_3d(np.asarray(snaps[-1]["features"]))

    if requested:
        snaps = [{**snap, **dict(requested)} for snap in snaps]
    figures = [_replay_frame(snap, dim, fixed, defaults, max_points) for snap in snaps]
    base = go.Figure(figures[0])
    frames = []
    for snap, fig in zip(snaps, figures, strict=True):
        data = [
            {"type": "mesh3d", "intensity": t.intensity} if t.type == "mesh3d" else t
            for t in fig.data
        ]  # the mesh's vertices never change: send only its face colours per frame
        frames.append(
            go.Frame(
                data=data,
                name=str(snap["step"]),
                traces=list(range(len(data))),
                layout={"title": {"text": f"{title} — step {snap['step']}"}},
            )
        )
    base.frames = frames
    play = {
        "frame": {"duration": frame_ms, "redraw": True},
        "fromcurrent": True,
        "transition": {"duration": 0},
    }
    pause = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}
    base.update_layout(
        title={"text": f"{title} — step {snaps[0]['step']}"},
        uirevision=UIREVISION,
        margin={"b": 130},  # room for the play button and the slider
        # The controls take the bottom: the legend goes to the right (a replay is a whole
        # page, there is room), where they cannot cover it.
        legend={
            "orientation": "v",
            "xref": "paper",
            "x": 1.02,
            "xanchor": "left",
            "yref": "paper",
            "y": 1.0,
            "yanchor": "top",
        },  # fmt: skip
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "y": 0.0,
                "xanchor": "left",
                "yanchor": "top",
                "pad": {"t": 60, "r": 10},
                "showactive": False,
                "buttons": [
                    {"label": "▶ Play", "method": "animate", "args": [None, play]},
                    {"label": "❚❚ Pause", "method": "animate", "args": [[None], pause]},
                ],
            }
        ],
        sliders=[
            {
                "active": 0,
                "x": 0.22,
                "len": 0.78,
                "y": 0.0,
                "yanchor": "top",
                "pad": {"t": 50},
                "currentvalue": {"prefix": "step "},
                "steps": [
                    {
                        "label": str(snap["step"]),
                        "method": "animate",
                        "args": [
                            [str(snap["step"])],
                            {
                                "mode": "immediate",
                                "frame": {"duration": 0, "redraw": True},
                                "transition": {"duration": 0},
                            },
                        ],
                    }
                    for snap in snaps
                ],
            }
        ],
    )
    return base


def _replay_frame(snap: Mapping, dim: int, fixed: dict, defaults: Mapping, max_points: int):
    features = np.asarray(snap["features"], dtype=np.float64)
    labels = np.asarray(snap["labels"], dtype=np.int64)
    if len(labels) > max_points:
        keep = np.sort(np.random.default_rng(0).choice(len(labels), max_points, replace=False))
        features, labels = features[keep], labels[keep]
    params = _snapshot_kwargs(snap, defaults)
    common = {"features": features, "labels": labels, "weights": snap["weights"]}
    if dim == 2:
        return circle_figure(**common, **params, names=fixed["names"])
    if dim == 3:
        return sphere_figure(**common, **params, **fixed)
    return projection_figure(**common, **params, **fixed)
