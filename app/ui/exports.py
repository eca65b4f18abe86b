"""Export panel: the current figure as an offline HTML page and the run as an animated replay.

PNG export is plotly's own camera button on every figure's toolbar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from marginlab.figures import figure_html, replay_html
from marginlab.run_figures import embedding_figure
from ui.live import LiveTraining

MAX_REPLAY_FRAMES = 60


def export_panel(
    slot: str,
    live: LiveTraining,
    params: Mapping[str, Mapping[str, Any]],
    names: Sequence[str],
) -> None:
    """Offline HTML of each run's embedding view and replay, built on request.

    `params` maps each run's loss to the hyper-parameters its figures are drawn with.
    """
    key = f"{slot}_exports"
    with st.expander("Export figures", icon=":material/download:"):
        st.caption(
            "Each figure's toolbar has a camera button for a PNG. Here: self-contained HTML "
            "files that open offline (plotly.js is inside)."
        )
        if st.button("Prepare HTML exports", key=f"{slot}_prepare_exports"):
            st.session_state[key] = _build_exports(live, params, names)
        exports: dict[str, bytes] | None = st.session_state.get(key)
        if exports:
            for label, data in exports.items():
                st.download_button(
                    label,
                    data=data,
                    file_name=f"marginlab-{slot}-{label.split()[0].lower()}.html",
                    mime="text/html",
                    key=f"{slot}_download_{label}",
                )


def _build_exports(
    live: LiveTraining, params: Mapping[str, Mapping[str, Any]], names: Sequence[str]
) -> dict[str, bytes]:
    exports: dict[str, bytes] = {}
    with live.lock:
        for run in live.runs:
            history = list(run.history) or [run.latest_snapshot()]
            labels = run.data.probe_labels
            view = embedding_figure(history[-1], labels, params[run.config.loss], names=names)
            name = run.config.loss
            exports[f"{name} view (HTML)"] = figure_html(view).encode()
            frames = [snap.frame(labels) for snap in history[-MAX_REPLAY_FRAMES:]]
            exports[f"{name} replay (HTML)"] = replay_html(frames, names=names).encode()
    return exports
