"""Exports: figures as offline HTML pages, the run as an animated replay, and run files.

PNG export is plotly's own camera button on every figure's toolbar.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from marginlab.data.datasets import DatasetUnavailable
from marginlab.figures import figure_html, replay_html
from marginlab.figures.export import export_name
from marginlab.figures.run import embedding_figure
from marginlab.figures.style import LOSS_NAMES
from marginlab.training.run_files import RunFileError
from marginlab.training.service.builders import from_run_file
from ui.live import LiveTraining, adopt
from ui.service import training_service
from ui.text import plain

MAX_REPLAY_FRAMES = 60
# Where the worker put the upload (training.service.builders): not the user's business.
_UPLOAD_PATH = re.compile(r"\S*marginlab-load-\S*/upload\.pt")


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
            st.session_state[key] = _build_exports(slot, live, params, names)
        exports: dict[str, tuple[str, bytes]] | None = st.session_state.get(key)
        if exports:
            for label, (file_name, data) in exports.items():
                st.download_button(
                    label,
                    data=data,
                    file_name=file_name,
                    mime="text/html",
                    key=f"{slot}_download_{file_name}",
                )


def _build_exports(
    slot: str,
    live: LiveTraining,
    params: Mapping[str, Mapping[str, Any]],
    names: Sequence[str],
) -> dict[str, tuple[str, bytes]]:
    """{button label: (file name, HTML)}: each name says page, loss, step and kind."""
    exports: dict[str, tuple[str, bytes]] = {}
    for run in live.runs:
        history = list(run.history) or [run.latest_snapshot()]
        labels = run.probe_labels
        loss, step = run.config.loss, history[-1].step
        requested = params[loss]
        view = embedding_figure(history[-1], labels, requested, names=names)
        label = LOSS_NAMES.get(loss, loss)
        exports[f"{label}: view at step {step:,} (HTML)"] = (
            export_name(slot, label, step, "view"),
            figure_html(view).encode(),
        )
        frames = [snap.frame(labels) for snap in history[-MAX_REPLAY_FRAMES:]]
        replay = replay_html(frames, names=names, requested=requested)
        exports[f"{label}: replay to step {step:,} (HTML)"] = (
            export_name(slot, label, step, "replay"),
            replay.encode(),
        )
    return exports


# As server.maxUploadSize in streamlit_config.toml (tests/test_upload_safety.py holds them
# equal); the run-file checks bound what the file inflates to by the same number.
UPLOAD_LIMIT_BYTES = 50 * 1024 * 1024


def run_file_panel(slot: str, live: LiveTraining) -> None:
    """Save the session's run (or comparison) to one file; load one back, safely.

    Files are read with torch.load(weights_only=True) by marginlab.training.run_files: nothing is
    unpickled. A corrupt, foreign or oversized upload gives a message and changes nothing.
    """
    comparison = live.handle.kind == "comparison"
    with st.expander("Save or load the run", icon=":material/save:"):
        alive = live.handle.alive
        if st.button("Prepare the run file", key=f"{slot}_prepare_save", disabled=not alive):
            # The worker writes it between two steps (a playing run goes on playing).
            try:
                st.session_state[f"{slot}_run_file"] = live.handle.save()
            except RuntimeError as error:  # its worker died: the page already says so
                st.error(f"Could not save the run: {error}", icon=":material/error:")
        data = st.session_state.get(f"{slot}_run_file")
        if data:
            st.download_button(
                f"Download ({len(data) / 1e6:.1f} MB)",
                data=data,
                file_name=f"marginlab-{slot}-step{live.steps}.pt",
                mime="application/octet-stream",
                key=f"{slot}_download_run",
            )
        upload = st.file_uploader(
            "Load a saved run",
            type=["pt"],
            key=f"{slot}_upload",
            on_change=_forget_notice,
            args=(slot,),
        )
        if upload is not None and st.session_state.get(f"{slot}_loaded") != upload.file_id:
            message = load_upload(slot, upload.getvalue(), comparison=comparison)
            st.session_state[f"{slot}_loaded"] = upload.file_id
            st.session_state[f"{slot}_load_message"] = message
            if message is None:
                st.rerun()
        message = st.session_state.get(f"{slot}_load_message")
        if message:
            st.error(plain(message), icon=":material/error:")  # quotes the file's contents


def _forget_notice(slot: str) -> None:
    st.session_state.pop(f"{slot}_load_message", None)


def load_upload(slot: str, data: bytes, *, comparison: bool) -> str | None:
    """Replace the session's trainer by the uploaded one; an error message, or None if done."""
    limit = UPLOAD_LIMIT_BYTES
    if len(data) > limit:
        return (
            f"That file is {len(data) / 2**20:.0f} MB; run files are at most {limit // 2**20} MB "
            "here. Nothing changed."
        )
    try:
        # Loaded in a training worker (never unpickled here: run_files reads weights only).
        recipe = from_run_file(data, comparison=comparison, max_bytes=limit)
        handle = training_service().create(recipe)
    except RunFileError as error:
        detail = _UPLOAD_PATH.sub("the file", str(error))
        return f"Could not load it: {detail}. Nothing changed."
    except DatasetUnavailable as error:
        return f"Could not load it: {error}. Nothing changed."
    adopt(slot, handle)
    return None
