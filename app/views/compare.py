"""Compare: up to six losses trained in lock-step — same batches, same initial weights."""

import plotly.graph_objects as go
import streamlit as st

from marginlab.figures import target_logit_figure
from marginlab.figures.loss_colors import title_panel
from marginlab.figures.run import curves_figure, embedding_figure
from marginlab.figures.style import margin_label, margin_of
from marginlab.lab_state import LAB_LOSSES, MAX_COMPARE, run_config, tunable_params
from marginlab.training.service.builders import new_comparison
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
from ui.live_plot import caption_markdown, live_plotly
from ui.panels import metrics_table
from ui.presenter import presenter_css, styled
from ui.state import page_setup, update_config

SLOT = "compare"
COLUMNS = 3

config = page_setup("compare")
with st.sidebar:
    presenter = presenter_toggle()
    chosen = st.multiselect(
        "losses (up to six)",
        options=list(LAB_LOSSES),
        default=list(config.losses),
        format_func=LOSS_NAMES.get,
        max_selections=MAX_COMPARE,
        key="compare_losses",
    )
    if chosen and tuple(chosen) != config.losses:
        config = update_config(losses=tuple(chosen))
    setup_controls(config, show_loss=False)
    st.divider()
    wanted = [run_config(config, loss) for loss in config.losses]
    # The union of the chosen losses' sliders: s is shared, each margin has its own name.
    # Each slider shows the value of the first chosen loss that uses it.
    resolved: dict = {}
    for run_wanted in wanted:
        for name in tunable_params(run_wanted.loss):
            resolved.setdefault(name, getattr(run_wanted, name))
    margin_controls(config, resolved, names=tuple(resolved))
    if not presenter:
        training_controls(config, wanted[0].to_dict())
presenter_css(presenter)

st.title("Compare losses")
st.caption(
    "Every run sees the same batches in the same order and starts from the same backbone "
    "weights (the hashes in the table prove it); one Play button drives them all."
)
params = {c.loss: {"loss": c.loss, **c.head_params()} for c in wanted}


def draw(live: LiveTraining) -> None:
    """Every run's latest snapshot, drawn with the current s and m; one shared camera."""
    runs = live.runs
    labels, names = runs[0].probe_labels, runs[0].class_names
    snaps = {run.config.loss: run.latest_snapshot() for run in runs}
    metrics_table(runs)
    # What each picture shows: the same for every session on this comparison with these
    # settings, so ui.figure_cache builds each once for all of them.
    shown = (presenter, Same(labels), tuple(names or ()))

    def view(loss: str) -> go.Figure:
        spec = params[loss]
        fig = embedding_figure(snaps[loss], labels, spec, names=names)
        # Each panel titled with its loss in the loss's colour (as in the curves below).
        title_panel(fig, loss, margin_label(loss, spec.get("s"), **margin_of(spec)))
        return styled(fig.update_layout(showlegend=False), presenter)

    views = {
        loss: prepared(
            ("compare_view", loss, Same(snap), frozen(params[loss]), *shown),
            lambda loss=loss: view(loss),
        )
        for loss, snap in snaps.items()
    }
    caption = next(iter(views.values())).caption
    st.caption(caption_markdown(caption or ""))  # once for the row of panels
    for start in range(0, len(runs), COLUMNS):
        columns = st.columns(COLUMNS)
        for column, run in zip(columns, runs[start : start + COLUMNS], strict=False):
            with column:
                live_plotly(
                    views[run.config.loss],
                    key=f"compare_view_{run.config.loss}",
                    height=380,
                    camera_key="compare-sphere",
                    caption=False,
                )
    curves = [{**params[loss], "label": LOSS_NAMES[loss]} for loss in snaps]
    logits = prepared(
        ("compare_logits", presenter, frozen({"curves": curves})),
        lambda: styled(target_logit_figure(curves, show_paper_curves=False), presenter),
    )
    live_plotly(logits, key="compare_logits", height=460)
    # The page's whole width: three panels of six runs each were unreadable in half of it.
    history = {LOSS_NAMES[run.config.loss]: run.history for run in runs}
    drawn = tuple((name, *history_key(past)) for name, past in history.items())
    training = prepared(
        ("compare_curves", presenter, drawn),
        lambda: styled(curves_figure({k: list(v) for k, v in history.items()}), presenter),
    )
    live_plotly(training, key="compare_curves", height=460)


live = live_page(
    SLOT, wanted, lambda configs: new_comparison(configs), speed=config.speed, draw=draw
)
if not presenter:
    run_file_panel(SLOT, live)
    export_panel(SLOT, live, params, live.runs[0].class_names)
