"""Figure panels by name, for one run or a lock-step comparison, and a fast-forward button.

A lesson lists its figures by name ("view", "raw", "target_logit", "theta_hist", "curves",
"boundary", "probability": marginlab.lessons.parser.FIGURES); `show_figures` draws them for
whatever the
session trains, with the hyper-parameters asked for now (so a slider redraws at once). Pages
other than Lessons can use it too: the names are the Lab's figures plus two of the Formulas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from marginlab.experiments.angle_report import run_params
from marginlab.figures import (
    binary_boundary_figure,
    target_logit_figure,
)
from marginlab.figures.loss_colors import title_panel
from marginlab.figures.run import (
    LOWEST_CLASS,
    MARGIN_MET,
    MEDIAN_LEAD,
    adaptive_figures,
    angle_figure,
    curves_figure,
    embedding_figure,
    logit_figure,
    metrics_row,
    probability_figure,
    raw_figure,
    state_label,
)
from marginlab.figures.style import margin_label, margin_of
from marginlab.training.service import RunView
from marginlab.training.snapshots import Snapshot
from ui.controls import LOSS_NAMES
from ui.figure_cache import Same, frozen, history_key, prepared
from ui.live import LiveTraining
from ui.live_plot import live_plotly
from ui.presenter import figure_height, styled

FIGURE_CAPTIONS = {
    "view": "Features on the unit circle (2-D) or sphere (3-D); grey: the margin bands.",
    "raw": "Raw features before normalisation (2-D only).",
    "target_logit": "Target logit ψ(θ) against θ, with the θ_y histogram of the probe images.",
    "theta_hist": "Leads: angle to the nearest other class weight minus angle to the own "
    "weight, with a line at the requested margin m.",
    "curves": "Training curves.",
    "boundary": "Two classes in the (θ₁, θ₂) plane: who wins, and the grey margin between.",
    "probability": "Probability of the right class as θ_y grows.",
    "family": "Logits vs θ for a margin that adapts: its target at low, middle and high norm, "
    "its ±σ spread, or its hard-negative curve.",
    "norms": "The margin each sample gets from its raw feature norm, over the probe's norms.",
    "state": "The running state the loss updates every training step.",
}
# Figures drawn once for all runs of a comparison; the others get one panel per run.
SHARED = ("target_logit", "boundary", "curves")
FAST_FORWARD_CHUNK = 25


def _spec(params: Mapping[str, Any]) -> dict[str, Any]:
    """A target-logit / boundary curve spec with its label."""
    label = margin_label(params["loss"], params.get("s"), **margin_of(params))
    return {"loss": params["loss"], **margin_of(params), "label": label}


def run_figure(
    name: str, run: RunView, snap: Snapshot, *, names: Sequence[str] | None = None
) -> go.Figure | None:
    """Figure `name` of one run at snapshot `snap`; None where it does not apply (raw in 3-D)."""
    params = run_params(run)
    labels = run.probe_labels
    if name == "view":
        return embedding_figure(snap, labels, params, names=names)
    if name == "raw":
        return raw_figure(snap, labels, params, names=names)
    if name == "target_logit":
        return logit_figure(snap, labels, params)
    if name == "theta_hist":
        return angle_figure(snap, labels, params, names=names)
    if name == "curves":
        return curves_figure(list(run.history))
    if name == "boundary":
        return binary_boundary_figure([_spec(params)])
    if name == "probability":
        return probability_figure(snap, params, n_classes=run.num_classes)
    if name in ("family", "norms", "state"):  # None for a loss without that figure
        return dict(adaptive_figures(list(run.history) or [snap], snap, labels, params)).get(name)
    raise ValueError(f"unknown figure {name!r}")


def comparison_figure(name: str, runs: Sequence[RunView]) -> go.Figure:
    """Figure `name` for several runs at once (only the SHARED names)."""
    params = [run_params(run) for run in runs]
    if name == "target_logit":
        # The paper's curves stay in, thin and dotted: lesson texts quote their values.
        return target_logit_figure([_spec(p) for p in params])
    if name == "boundary":
        return binary_boundary_figure([_spec(p) for p in params])
    if name == "curves":
        return curves_figure({LOSS_NAMES[run.config.loss]: list(run.history) for run in runs})
    raise ValueError(f"figure {name!r} is drawn per run, not for a comparison")


def metrics_strip(run: RunView, snap: Snapshot) -> None:
    """Step, loss, accuracy, angles, the median lead and "margin met" of one run, and a
    NaN-guard note.

    The note sits in a slot that is always there: an element appearing above the plots would
    shift them, and Streamlit would remount each plot's div, losing the user's 3-D camera.
    """
    names = run.class_names
    row = metrics_row(snap, run.probe_labels, run_params(run), names=names)
    cols = st.columns(6)
    cols[0].metric("step", f"{row['step']:,}")
    # No step yet: no loss was measured, and "0.000" would read as a perfect fit.
    trained = row["step"] > 0
    cols[1].metric("training loss", f"{row['training loss']:.3f}" if trained else "—")
    cols[2].metric("test accuracy", f"{row['test acc %']:.1f} %")
    cols[3].metric("Intra / Inter", f"{row['Intra °']:.0f}° / {row['Inter °']:.0f}°")
    cols[4].metric(
        "measured margin",
        f"{row[MEDIAN_LEAD]:.1f}°",
        help="The median lead of the probe images: angle to the nearest other class weight "
        "minus angle to the own weight.",
    )
    cols[5].metric(
        "margin met",
        f"{row[MARGIN_MET]:.0f} %",
        # The weakest class under the number: the mean alone hides a class that never makes it.
        delta=f"lowest class {row[LOWEST_CLASS]}" if row[LOWEST_CLASS] else None,
        delta_color="off",
        delta_arrow="off",
        help="Probe images past the margin the loss asks for (lead ≥ m for an angular margin, "
        "else inside the with-margin region), and the class that meets it least often.",
    )
    if snap.state:  # the running state of a margin that adapts (always there for its loss)
        for column, (name, value) in zip(st.columns(6), snap.state.items(), strict=False):
            column.metric(state_label(run.config.loss, name), f"{value:.3g}")
    nan_note = st.empty()
    if run.nan_seen:
        nan_note.warning(
            f"{run.skipped_steps} step(s) had a non-finite loss and were skipped "
            "(the weights are untouched). Try a smaller s or m.",
            icon=":material/warning:",
        )


def metrics_table(runs: Sequence[RunView]) -> None:
    """One row per run of a comparison, with the hash of its initial backbone weights."""
    rows = [
        {
            "loss": LOSS_NAMES[run.config.loss],
            **metrics_row(
                run.latest_snapshot(),
                run.probe_labels,
                run_params(run),
                names=run.class_names,
            ),
            "initial weights": run.init_hash[:12],
        }
        for run in runs
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    skipped = {LOSS_NAMES[run.config.loss]: run.skipped_steps for run in runs if run.nan_seen}
    note = st.empty()
    if skipped:
        note.warning(
            "Steps skipped for a non-finite loss: "
            + ", ".join(f"{name} {count}" for name, count in skipped.items()),
            icon=":material/warning:",
        )


def show_figures(
    figures: Sequence[str],
    runs: Sequence[RunView],
    *,
    key: str,
    presenter: bool = False,
    names: Sequence[str] | None = None,
    columns: int = 2,
) -> None:
    """Draw each named figure: one panel for a single run, shared or per-run panels for a
    comparison. Keys are `key` + figure name (+ loss), so live_plotly keeps each view's camera."""
    height = figure_height(presenter)
    names = tuple(names) if names is not None else None
    for name in figures:
        st.caption(FIGURE_CAPTIONS.get(name, name))
        if len(runs) > 1 and name in SHARED:
            fig = prepared(
                ("comparison", name, presenter, *(figure_inputs(name, run) for run in runs)),
                lambda name=name: styled(comparison_figure(name, runs), presenter),
            )
            live_plotly(fig, key=f"{key}_{name}", height=height)
            continue
        grid = st.columns(min(columns, len(runs))) if len(runs) > 1 else [st.container()]
        for index, run in enumerate(runs):
            with grid[index % len(grid)]:
                snap = run.latest_snapshot()
                fig = prepared(
                    (name, presenter, len(runs) > 1, Same(snap), names, *figure_inputs(name, run)),
                    lambda name=name, run=run, snap=snap: _run_panel(
                        name, run, snap, names, presenter, len(runs) > 1
                    ),
                )
                if fig is None:
                    st.caption(
                        "This loss has no such view."
                        if name in ("family", "norms", "state")
                        else "This view is drawn for 2-D embeddings only."
                    )
                    continue
                live_plotly(
                    fig,
                    key=f"{key}_{name}_{run.config.loss}",
                    height=height if len(runs) == 1 else 380,
                    camera_key=f"{key}-sphere",
                    caption=len(runs) == 1,
                )


def _run_panel(
    name: str,
    run: RunView,
    snap: Snapshot,
    names: Sequence[str] | None,
    presenter: bool,
    in_row: bool,
) -> go.Figure | None:
    fig = run_figure(name, run, snap, names=names)
    if fig is None:
        return None
    if in_row:  # which loss, in its colour; the caption above says what
        title_panel(fig, run.config.loss, LOSS_NAMES[run.config.loss])
        fig.update_layout(showlegend=False)
    return styled(fig, presenter)


# Figures drawn from the run's whole history, not only from the snapshot shown.
FROM_HISTORY = ("curves", "family", "norms", "state")


def figure_inputs(name: str, run: RunView) -> tuple:
    """What figure `name` of `run` depends on besides its snapshot: the settings asked for
    now, the probe's labels and, for the history's figures, the history."""
    inputs: tuple = (frozen(run_params(run)), Same(run.probe_labels))
    return inputs + history_key(run.history) if name in FROM_HISTORY else inputs


def fast_forward(live: LiveTraining, target_step: int, *, label: str) -> None:
    """A button that trains up to `target_step` with a progress bar (Play stays available).

    The worker trains in chunks of FAST_FORWARD_CHUNK steps; the page waits for each chunk
    (its own session only: other sessions' pages go on) and shows how far it got."""
    remaining = target_step - live.steps
    if remaining <= 0 or not live.handle.alive:
        return
    if not st.button(label, icon=":material/fast_forward:"):
        return
    bar = st.progress(0.0, text="training…")
    while live.steps < target_step and live.handle.alive:
        live.handle.step(min(FAST_FORWARD_CHUNK, target_step - live.steps))
        done = 1 - (target_step - live.steps) / remaining
        bar.progress(done, text=f"training: step {live.steps} of {target_step}")
        if live.handle.error:
            break
    bar.empty()
