"""The ArcFace paper's Table 3 on labelled sets of images, with the paper's definitions beside.

Embedding 1,000 training images takes about as long as a live tick's whole budget (0.11 s on
one core for the MNIST CNN), so the training-images row is measured while the run is paused
(and cached for that step); while it plays, only the held-out row of the snapshot is shown.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from marginlab.experiments.angle_report import (
    HELD_OUT_SET,
    TABLE3_DEFINITIONS,
    Table3Row,
    table3_sets,
)
from marginlab.training.run import Run
from marginlab.training.snapshots import Snapshot
from ui.live import LiveTraining


def table3_frame(rows: Sequence[Table3Row]) -> pd.DataFrame:
    """One row per set, angles in degrees; empty where a statistic is undefined (W-EC and
    W-Inter on identities without a class weight)."""
    return pd.DataFrame([row.degrees() for row in rows])


def definitions_caption() -> None:
    st.caption(
        "ArcFace paper (Deng et al., CVPR 2019), Table 3: "
        + "; ".join(f"**{name}** = {text}" for name, text in TABLE3_DEFINITIONS.items())
        + "."
    )


def _probe_row(run: Run, snap: Snapshot) -> Table3Row:
    stats = snap.stats
    return Table3Row(
        HELD_OUT_SET,
        len(run.data.probe_labels),
        stats["intra"],
        stats["inter"],
        stats["w_ec"],
        stats["w_inter"],
        f"{run.probe_description}, at step {snap.step}",
    )


def _measured_rows(
    live: LiveTraining, run: Run, key: str, unseen: tuple[np.ndarray, np.ndarray] | None
) -> list[Table3Row] | None:
    """table3_sets at the run's current step, cached per step; None if the trainer is busy."""
    cached = st.session_state.get(key)
    if cached is not None and cached[0] == (id(run), run.steps):
        return cached[1]
    if not live.lock.acquire(blocking=False):
        return None  # a training chunk holds the model: embedding now would race it
    try:
        rows = table3_sets(run, unseen=unseen)
    finally:
        live.lock.release()
    st.session_state[key] = ((id(run), run.steps), rows)
    return rows


def table3_panel(
    live: LiveTraining,
    run: Run,
    snap: Snapshot,
    *,
    key: str,
    unseen: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Table 3 on the training images and the held-out images of the training classes (and on
    unseen identities when given), labelled; only the held-out row while playing or when an
    older snapshot is replayed (the training images are embedded with the current weights)."""
    current = snap.step == run.steps
    rows = None if live.playing or not current else _measured_rows(live, run, key, unseen)
    notes = []
    if rows is None:
        rows = [_probe_row(run, snap)]
        why = "while the run plays" if current else "for an earlier snapshot"
        notes.append(f"The training-images row is measured when paused (not {why}).")
    if unseen is None:
        notes.append(
            "Unseen identities (the paper's Intra2 / Inter2) need people the model never "
            "trained on: the Faces page's open-set run measures them."
        )
    st.dataframe(table3_frame(rows), hide_index=True, width="stretch")
    definitions_caption()
    if notes:
        st.caption(" ".join(notes))
