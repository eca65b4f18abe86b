"""A plotly chart for live updates that keeps the user's camera and zoom.

``st.plotly_chart`` replaces its DOM node whenever the figure changes
(streamlit/streamlit#8882), so a 3-D camera the user has dragged snaps back on every rerun,
``uirevision`` or not. :func:`live_plotly` is a small ``st.components.v2`` component that
keeps ONE div per key and calls ``Plotly.react`` on it with a constant ``layout.uirevision``:
plotly.js then keeps the camera, the 2-D zoom and legend clicks across updates.

plotly.js itself (4.8 MB, the exact file the plotly package ships) is fetched once per page
from this Streamlit server, never from a CDN, so the app works offline:

* with ``server.enableStaticServing = true`` (our streamlit_config.toml) it is copied once
  into ``<entry script folder>/static/vendor/`` and served from ``/app/static/...``; the copy
  keeps the file's modification time, so browsers can cache it across reloads;
* otherwise (another entry script, a checkout whose config link is broken, a read-only
  install) it is served straight from plotly's package folder through a files-only
  ``components.v1`` registration, which needs no configuration at all.

Each update sends only the figure as compact JSON (what ``fig.to_json()`` writes, by
figures.figure_json, without plotly.py's copies: numpy arrays go as base64 typed arrays) plus a
few bytes of options; the bundle is never re-sent.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go
import streamlit as st
from plotly.offline import get_plotlyjs_version
from streamlit import config as st_config
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from marginlab.figures.figure_json import figure_json as fast_figure_json
from marginlab.text_fit import fit_text_js
from ui.figure_cache import PreparedFigure, as_figure, prepare

__all__ = ["caption_markdown", "figure_json", "live_plotly", "plotly_js_url"]

_FRONTEND = Path(__file__).resolve().parent / "live_plot_frontend"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
# The version in the file name makes an upgraded plotly a new URL, never a stale cached file.
_VENDOR_NAME = f"plotly-{get_plotlyjs_version()}.min.js"
# Name of the files-only v1 registration used when static serving is off.
_FILES_COMPONENT = "plotly_js_files"


def _compact_js(source: str) -> str:
    """Drop comment-only lines, blank lines and indentation.

    Inline component JS travels inside every delta (once per rerun and instance), so the
    commented source would cost ~2x the bytes. Safe for our file: no multi-line strings.
    """
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//"))


# Registered once at import; the mount call below only sends the (small) JS with each delta.
_component = st.components.v2.component(
    "marginlab_live_plotly",
    html='<div class="live-plotly"></div>',
    css=".live-plotly { width: 100%; }",
    # fit_text.js first: its functions wrap long texts to the plot's width on every update.
    js=_compact_js(fit_text_js() + (_FRONTEND / "live_plotly.js").read_text(encoding="utf-8")),
    # plotly.js puts its stylesheet into document.head; a shadow root would hide it.
    isolate_styles=False,
)


def _base_path() -> str:
    """'/' or '/<server.baseUrlPath>/', so the URL also works behind a path prefix."""
    base = str(st_config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/" if base else "/"


def _vendor_copy(static_dir: Path) -> bool:
    """Make sure ``static_dir/vendor`` holds plotly.min.js; False if it cannot.

    Costs two stat calls per rerun once the copy exists (a deleted copy comes back).
    The folder gets its own ``.gitignore`` (like .pytest_cache does) so the 4.8 MB copy is
    never committed, whatever the repository's ignore file says.
    """
    vendor = static_dir / "vendor"
    target = vendor / _VENDOR_NAME
    try:
        source = PLOTLY_JS.stat()
        if target.is_file() and target.stat().st_size == source.st_size:
            return True
        vendor.mkdir(parents=True, exist_ok=True)
        ignore = vendor / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# Written by ui/live_plot.py: a copy of plotly's bundle.\n*\n")
        # Copy to a temporary name, then rename: two sessions starting at once never serve
        # a half-written file. copy2 keeps the mtime, which gives browsers a Last-Modified
        # they can cache against.
        fd, tmp = tempfile.mkstemp(dir=vendor, suffix=".tmp")
        os.close(fd)
        try:
            shutil.copy2(PLOTLY_JS, tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return True
    except OSError:
        return False


def _files_route() -> str:
    """Serve plotly's package_data folder at /component/<name>/ (no config needed)."""
    from streamlit.components.v1 import declare_component
    from streamlit.runtime import Runtime

    # declare_component names it after the calling module (this one); it registers only
    # during a script run, so do it here, once per runtime (AppTest makes a new runtime).
    name = f"{__name__}.{_FILES_COMPONENT}"
    if Runtime.exists():
        registry = Runtime.instance().component_registry
        if registry.get_component_path(name) is None:
            name = declare_component(_FILES_COMPONENT, path=str(PLOTLY_JS.parent)).name
    return f"{_base_path()}component/{name}/{PLOTLY_JS.name}?v={get_plotlyjs_version()}"


def plotly_js_url() -> str:
    """The URL path (on this Streamlit server) the browser loads plotly.js from.

    Must be called during a script run.
    """
    ctx = get_script_run_ctx()
    if ctx is not None and st_config.get_option("server.enableStaticServing"):
        # The folder Streamlit serves: <entry script's folder>/static, symlinks resolved
        # in the folder path only (as streamlit.file_util.get_app_static_dir does).
        static_dir = Path(os.path.realpath(Path(ctx.main_script_path).parent / "static"))
        if _vendor_copy(static_dir):
            return f"{_base_path()}app/static/vendor/{_VENDOR_NAME}"
    return _files_route()


def figure_json(fig: go.Figure | Mapping[str, Any]) -> str:
    """Compact JSON of a figure; numpy arrays become base64 typed arrays (float32 stays 4 B)."""
    return fast_figure_json(as_figure(fig))


def live_plotly(
    fig: go.Figure | Mapping[str, Any] | PreparedFigure,
    *,
    key: str,
    height: int = 480,
    camera_key: str | None = None,
    config: Mapping[str, Any] | None = None,
    caption: bool = True,
) -> None:
    """Show ``fig`` and update it in place on every rerun, keeping camera and zoom.

    Parameters
    ----------
    fig
        The figure, or one prepared once for every session (ui.figure_cache). Use float32
        numpy arrays for big traces: they travel as base64.
        ``layout.uirevision`` defaults to a constant; set your own and change it to reset
        the user's view (camera, zoom) on purpose.
    key
        Required and stable across reruns: the key is what makes Streamlit keep the same
        element (and so the same plot div) while the figure changes.
    height
        Height in pixels.
    camera_key
        Plots with the same ``camera_key`` share one 3-D camera (``layout.scene`` only):
        rotating one rotates the others, live. The shared camera also survives the plot
        being unmounted and mounted again in the same browser tab (e.g. a page switch).
    config
        plotly.js config, merged over ``{"responsive": True, "displaylogo": False}``; the
        modebar (with its PNG download button) stays on by default.
    caption
        The figure's subtitle is always taken out of the plot (plotly cannot wrap it); with
        ``caption`` it is shown under the plot as page text, which wraps. Pass False where
        the page explains a row of alike panels once.
    """
    ready = fig if isinstance(fig, PreparedFigure) else prepare(fig)
    meta = {
        "key": key,
        # Microseconds: fits a JS number exactly; lets the frontend drop out-of-order calls.
        "seq": time.time_ns() // 1000,
        "height": int(height),
        "camera_key": camera_key,
        "config": dict(config or {}),
        "src": plotly_js_url(),
        # The user changed something (a full rerun, not a live tick of a fragment): the
        # frontend draws it ahead of the page's live updates.
        "urgent": _full_rerun(),
    }
    # One UTF-8 JSON document sent as raw bytes: the figure JSON is spliced in as is,
    # instead of being parsed and re-escaped inside another JSON string.
    head = json.dumps(meta, separators=(",", ":"))[:-1]
    payload = f'{head},"fig":{ready.json}}}'.encode()
    _component(key=key, data=payload, height=int(height), width="stretch")
    if caption and ready.caption:
        st.caption(caption_markdown(ready.caption))


def _full_rerun() -> bool:
    """True in a run of the whole script, False in a fragment's own rerun (a live tick)."""
    ctx = get_script_run_ctx()
    return ctx is None or not ctx.fragment_ids_this_run


def caption_markdown(text: str) -> str:
    """Plain caption text made safe for st.caption's markdown (W_j must not start italics)."""
    for char in ("\\", "_", "*", "$", "#"):
        text = text.replace(char, "\\" + char)
    return text.replace("<br>", "  \n")
