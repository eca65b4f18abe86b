"""Lab: one loss, trained live; every picture redrawn as s and m move."""

from collections.abc import Callable, Hashable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from marginlab.figures.run import (
    adaptive_figures,
    angle_figure,
    curves_figure,
    embedding_figure,
    logit_figure,
    metrics_row,
    raw_figure,
)
from marginlab.lab_state import run_config
from marginlab.training.service.builders import new_run
from ui.controls import (
    LOSS_NAMES,
    margin_controls,
    presenter_toggle,
    setup_controls,
    training_controls,
)
from ui.exports import export_panel, run_file_panel
from ui.figure_cache import Same, frozen, history_key, prepared
from ui.live import LiveTraining
from ui.live_page import live_page
from ui.live_plot import live_plotly
from ui.panels import metrics_strip
from ui.presenter import figure_height, presenter_css, styled
from ui.state import page_setup
from ui.table3 import table3_panel

SLOT = "lab"
SCRUBBER_PX = 92  # the scrubber with its label, so its slot never changes height

config = page_setup("lab")
wanted = run_config(config)
with st.sidebar:
    presenter = presenter_toggle()
    setup_controls(config)
    st.divider()
    st.subheader(LOSS_NAMES[config.loss])
    margin_controls(config, wanted.to_dict())
    if not presenter:
        training_controls(config, wanted.to_dict())
presenter_css(presenter)

st.title("Margin Lab")
params = {"loss": config.loss, **wanted.head_params()}


def draw(live: LiveTraining) -> None:
    """The latest snapshot (or, while paused, the one the scrubber picks) with the current
    s and m: moving a slider redraws the geometry at once from the current weights."""
    run = live.runs[0]
    names, labels = run.class_names, run.probe_labels
    history = run.history
    snap = history[-1]
    # Elements that come and go (the scrubber while paused, the NaN note) get a slot that is
    # always there: a new element above the plots would shift them, and Streamlit would then
    # remount each plot's div, losing the user's 3-D camera and zoom on every Pause and Play.
    # The slot keeps its height whether the scrubber is in it or not: appearing on Pause, it
    # pushed the whole page down by its height.
    scrubber = st.container(height=SCRUBBER_PX, border=False)
    if not live.playing and len(history) > 1:
        by_step = {past.step: past for past in history}  # valued in training steps
        if st.session_state.get("lab_scrub_latest") != history[-1].step:
            # New snapshots since the scrubber was last drawn: it starts at the newest again
            # (a keyed widget would keep its old step and show an old snapshot).
            st.session_state["lab_scrub_latest"] = history[-1].step
            st.session_state["lab_scrub"] = history[-1].step
        step = scrubber.select_slider(
            "replay the history: training step",
            options=list(by_step),
            key="lab_scrub",
            help="Pick an earlier training step; the figures show that snapshot with the "
            "current s and m.",
        )
        snap = by_step[step]
    else:
        scrubber.caption("Pause to replay the history, snapshot by snapshot.")
    metrics_strip(run, snap)
    height = figure_height(presenter)
    # What a picture shows: the same for every session that follows this shared run with these
    # settings, so ui.figure_cache builds each once for all of them.
    shown = (presenter, Same(snap), frozen(params), Same(labels), tuple(names or ()))

    def show(key: str, build: Callable[[], go.Figure], *inputs: Hashable) -> None:
        fig = prepared((key, *shown, *inputs), lambda: styled(build(), presenter))
        live_plotly(fig, key=key, height=height)

    left, right = st.columns(2)
    with left:
        show("lab_view", lambda: embedding_figure(snap, labels, params, names=names))
    with right:
        show("lab_logit", lambda: logit_figure(snap, labels, params))

    def angles() -> go.Figure:
        return angle_figure(snap, labels, params, names=names)

    if snap.features.shape[1] == 2:  # raw_figure draws 2-D features only
        left, right = st.columns(2)
        with left:
            show("lab_raw", lambda: raw_figure(snap, labels, params, names=names))
        with right:
            show("lab_angles", angles)
    else:  # no raw plane beyond 2-D: the angles take the row instead of half of it
        show("lab_angles", angles)
        st.caption("The raw (unnormalised) feature view is drawn for 2-D embeddings only.")
    # Margins that adapt (AdaFace, MagFace, ElasticFace, CurricularFace, AdaCos): their own.
    adaptive = adaptive_figures(history, snap, labels, params)
    for start in range(0, len(adaptive), 2):
        for column, (key, fig) in zip(st.columns(2), adaptive[start : start + 2], strict=False):
            with column:
                live_plotly(styled(fig, presenter), key=f"lab_{key}", height=height)
    # The curves show the whole history, not the scrubbed snapshot.
    show("lab_curves", lambda: curves_figure(history), *history_key(history))
    st.markdown("**This snapshot**: accuracy, Table-3 angles and leads")
    row = metrics_row(snap, labels, params, names=names)
    st.dataframe(pd.DataFrame([row]), hide_index=True, width="stretch")
    st.caption(
        f"Test accuracy, angles and leads are measured on the held-out images of the training "
        f"classes: {run.probe_description}. Lead = angle to the nearest other class weight − "
        "angle to the own weight; margin met: lead ≥ m for an angular margin, else inside the "
        "class's with-margin region."
    )
    st.markdown("**Angle statistics on three sets** (ArcFace paper, Table 3)")
    table3_panel(live, run, snap, key="lab_table3")


live = live_page(SLOT, [wanted], lambda configs: new_run(configs[0]), speed=config.speed, draw=draw)
if not presenter:
    run_file_panel(SLOT, live)
    export_panel(SLOT, live, {config.loss: params}, live.runs[0].class_names)
