"""Lab: one loss, trained live; every picture redrawn as s and m move."""

import pandas as pd
import streamlit as st

from marginlab.figures.run import (
    angle_figure,
    curves_figure,
    embedding_figure,
    logit_figure,
    metrics_row,
    raw_figure,
)
from marginlab.lab_state import run_config
from marginlab.training.run import Run
from ui.controls import (
    LOSS_NAMES,
    margin_controls,
    presenter_toggle,
    setup_controls,
    training_controls,
)
from ui.exports import export_panel, run_file_panel
from ui.live import live_training, run_every, transport
from ui.live_plot import live_plotly
from ui.panels import metrics_strip
from ui.presenter import figure_height, presenter_css, styled
from ui.state import page_setup, update_config
from ui.table3 import table3_panel
from ui.text import plain

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
live = live_training(SLOT, [wanted], lambda configs: Run(configs[0]))
if live is None:
    if st.button("Use the shipped MNIST subset instead", type="primary"):
        update_config(dataset="mnist-toy")
        st.rerun()
    st.stop()
run = live.runs[0]
if run.data.dataset.notice:
    st.info(plain(run.data.dataset.notice), icon=":material/info:")
transport(live, SLOT, speed=config.speed)
if live.error:
    st.error(live.error, icon=":material/error:")

params = {"loss": config.loss, **wanted.head_params()}
names = run.data.dataset.class_names
labels = run.data.probe_labels


@st.fragment(run_every=run_every(live))
def live_panel() -> None:
    if live.playing:
        live.advance(config.speed)
        if not live.playing:  # stopped by an error: redraw the buttons
            st.rerun(scope="app")
    history = list(run.history) or [run.latest_snapshot()]
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

    def show(fig, key: str) -> None:
        live_plotly(styled(fig, presenter), key=key, height=height)

    left, right = st.columns(2)
    with left:
        show(embedding_figure(snap, labels, params, names=names), "lab_view")
    with right:
        show(logit_figure(snap, labels, params), "lab_logit")
    raw = raw_figure(snap, labels, params, names=names)
    if raw is not None:
        left, right = st.columns(2)
        with left:
            show(raw, "lab_raw")
        with right:
            show(angle_figure(snap, labels, params, names=names), "lab_angles")
    else:  # no raw plane beyond 2-D: the angles take the row instead of half of it
        show(angle_figure(snap, labels, params, names=names), "lab_angles")
        st.caption("The raw (unnormalised) feature view is drawn for 2-D embeddings only.")
    show(curves_figure(history), "lab_curves")
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


live_panel()
if not presenter:
    run_file_panel(SLOT, live)
    export_panel(SLOT, live, {config.loss: params}, names)
