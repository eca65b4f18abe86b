"""The ArcFace paper's Table 3 on labelled sets of images, with the paper's definitions beside.

Embedding 1,000 training images takes about 0.11 s on one core for the MNIST CNN, and it needs
the model, which lives in a training worker: the training-images row is measured there, while
the run is paused (and cached for that step); while it plays, only the held-out row of the
snapshot is shown.
"""

from __future__ import annotations

import functools
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
from marginlab.training.service import RunView
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


def _probe_row(run: RunView, snap: Snapshot) -> Table3Row:
    stats = snap.stats
    return Table3Row(
        HELD_OUT_SET,
        len(run.probe_labels),
        stats["intra"],
        stats["inter"],
        stats["w_ec"],
        stats["w_inter"],
        f"{run.probe_description}, at step {snap.step}",
    )


def _measured_rows(
    live: LiveTraining, run: RunView, key: str, unseen: tuple[np.ndarray, np.ndarray] | None
) -> list[Table3Row] | None:
    """table3_sets at the run's current step, computed by the worker, cached per step (None
    when the worker cannot answer)."""
    stamp = (live.handle.id, run.name, run.steps)
    cached = st.session_state.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    look = functools.partial(table3_sets, unseen=unseen)
    try:
        rows = live.handle.query(live.runs.index(run), look)
    except RuntimeError:  # the worker died: the page says so; show the snapshot's row
        return None
    st.session_state[key] = (stamp, rows)
    return rows


def table3_panel(
    live: LiveTraining,
    run: RunView,
    snap: Snapshot,
    *,
    key: str,
    unseen: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Table 3 on the training images and the held-out images of the training classes (and on
    unseen identities when given), labelled; only the held-out row while playing or when an
    older snapshot is replayed (the training images are embedded with the current weights)."""
    current = snap.step == run.steps
    measurable = current and not live.playing and live.handle.alive
    rows = _measured_rows(live, run, key, unseen) if measurable else None
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
