"""Phase map: which (s, m) train, collapse or blow up — one short real run per cell."""

import streamlit as st

from marginlab.experiments.phase_map import DEFAULT_M, DEFAULT_S, MARGIN_OF_LOSS, phase_map
from marginlab.figures import phase_map_figure
from ui.controls import LOSS_NAMES
from ui.state import page_setup

config = page_setup("phase-map")
st.title("Phase map of s and m")
st.caption(
    "Each cell trains a fresh model for a few steps with that scale s and margin m, then "
    "colours the cell by its test accuracy — dark grey where training collapsed, red where a "
    "step was not finite. Results are cached, so a finished map reloads at once."
)
with st.sidebar:
    loss = st.selectbox(
        "loss",
        options=list(MARGIN_OF_LOSS),
        index=list(MARGIN_OF_LOSS).index(config.loss) if config.loss in MARGIN_OF_LOSS else 0,
        format_func=LOSS_NAMES.get,
        key="phase_loss",
    )
    steps = st.select_slider("steps per cell", options=[50, 100, 150, 300], value=150)
margin_name = MARGIN_OF_LOSS[loss]
grid = len(DEFAULT_S) * len(DEFAULT_M[margin_name])
st.write(
    f"{LOSS_NAMES[loss]}, {config.dim}-D, {config.dataset}: s ∈ {list(DEFAULT_S)}, "
    f"{margin_name} ∈ {list(DEFAULT_M[margin_name])} — {grid} runs of {steps} steps."
)
run_it = st.button("Compute (or resume) the map", type="primary", icon=":material/grid_on:")
bar = st.empty()


def show_progress(done: int, total: int, s: float, m: float) -> None:
    bar.progress(done / total, text=f"{done} of {total} cells · last: s = {s:g}, m = {m:g}")


if run_it:
    # A rerun (any widget) stops the sweep at the next cell; finished cells stay cached.
    result = phase_map(
        loss,
        config.dim,
        steps=steps,
        dataset=config.dataset,
        seed=config.seed,
        progress=show_progress,
    )
    st.session_state["phase_result"] = (loss, config.dim, steps, result)
saved = st.session_state.get("phase_result")
if saved and saved[:3] == (loss, config.dim, steps):
    st.plotly_chart(phase_map_figure(saved[3]), key="phase_map")
else:
    st.info("Press the button: cells already computed for this setup load from the cache.")
