"""Phase map: where (s, m) train, underfit, ask for too much margin or collapse — real runs."""

import streamlit as st

from marginlab.experiments.phase_map import (
    DEFAULT_M,
    DEFAULT_S,
    DEFAULT_STEPS,
    LAB_WARMUP,
    MARGIN_AXIS,
    MARGIN_OF_LOSS,
    margin_tick,
    phase_map,
)
from marginlab.experiments.phase_rule import PHASES, WHY
from marginlab.figures import phase_map_figure
from ui.controls import LOSS_NAMES
from ui.limits import limited
from ui.live_plot import live_plotly
from ui.state import page_setup

config = page_setup("phase-map")
st.title("Phase map of s and m")
st.caption(
    "Each cell trains fresh Lab runs (two seeds) with that scale s and margin m, then measures "
    "them on the whole test set and names the cell's phase by the rule below. Every run is "
    "saved to a cache as soon as it ends, so a stopped map resumes and a finished one reloads "
    "at once."
)
with st.sidebar:
    loss = st.selectbox(
        "loss",
        options=list(MARGIN_OF_LOSS),
        index=list(MARGIN_OF_LOSS).index(config.loss) if config.loss in MARGIN_OF_LOSS else 0,
        format_func=LOSS_NAMES.get,
        key="phase_loss",
    )
    warmup = st.radio(
        "margin warm-up",
        [LAB_WARMUP, 0],
        format_func=lambda w: f"{w} steps, as in the Lab" if w else "none, as in the papers",
        key="phase_warmup",
    )
    # With the warm-up, a run must go past it to train with its full margin.
    options = [300, 400, 600] if warmup else [100, 200, 300, 400, 600]
    steps = st.select_slider("steps per run", options=options, value=DEFAULT_STEPS)
margin_name = MARGIN_OF_LOSS[loss]
m_values = DEFAULT_M[margin_name]
settings = {
    "loss": loss,
    "dim": config.dim,
    "steps": steps,
    "warmup": warmup,
    "m_values": m_values,
    "seeds": (config.seed, config.seed + 1),
    "dataset": config.dataset,
}
runs = len(DEFAULT_S) * len(m_values) * 2
st.write(
    f"{LOSS_NAMES[loss]}, {config.dim}-D, {config.dataset}: s ∈ {list(DEFAULT_S)} (no unit), "
    f"{MARGIN_AXIS[margin_name]} ∈ {[margin_tick(margin_name, m) for m in m_values]} — "
    f"{runs} runs of {steps} steps ({'after a ' + str(warmup) + '-step' if warmup else 'no'} "
    "margin warm-up)."
)
with st.expander("How a cell's phase is decided", expanded=False):
    st.markdown(
        "\n".join(f"{k}. **{phase}**: {WHY[phase]}." for k, phase in enumerate(PHASES, 1))
        + "\n\nThe first rule that matches names the cell; the numbers behind each cell are "
        "on hover."
    )
run_it = st.button("Compute (or resume) the map", type="primary", icon=":material/grid_on:")
bar = st.empty()
chart = st.empty()
note = st.empty()


drawn = iter(range(10**6))  # one key per draw in this run: the map is redrawn as runs end


def draw(result: dict) -> None:
    with chart.container():
        figure = phase_map_figure(result, margin_name=margin_name)
        live_plotly(figure, key=f"phase_map_{next(drawn)}", height=560)
    if result.get("notes"):  # a damaged cache file, recomputed: say so once under the map
        note.info(" ".join(result["notes"]), icon=":material/info:")


def show_progress(done: int, total: int, text: str) -> None:
    bar.progress(done / total, text=f"run {done} of {total} done · last: {text}")
    draw(phase_map(**settings, cached_only=True))  # the partial map, straight from the cache


if run_it:
    # One sweep at a time on the server (ui.limits); a rerun (any widget) stops the sweep
    # after the current run, and finished runs stay cached.
    with limited("phase map") as allowed:
        if allowed:
            draw(phase_map(**settings, progress=show_progress))
    bar.empty()
else:
    cached = phase_map(**settings, cached_only=True)
    if any(cell["runs"] for row in cached["cells"] for cell in row) or cached.get("notes"):
        draw(cached)
    else:
        st.info("Press the button: runs already computed for this setup load from the cache.")
