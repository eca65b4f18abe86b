"""Snapshots: what a run looks like at one step, as plain numpy arrays and numbers.

A snapshot is taken every `snapshot_every` steps (and on demand). It holds the probe set's
embeddings, the class weights and centres, the running training loss and accuracy, the probe
(test) accuracy, the ArcFace Table-3 angle statistics and θ histograms, all computed by
`marginlab.geometry.angles` (one implementation of each statistic). The leads and "margin met"
depend on the margin asked for NOW, so the figures compute them from the features
(geometry.leads), not the snapshot.

No NaN ever: a snapshot is built only from finite values. Non-finite embeddings (a diverging
run) are replaced by zeros before any statistic (angles.py maps a zero vector to π/2 from
everything) and counted in `nonfinite_features`; a window whose every step was skipped for a
non-finite loss reports the previous window's loss.

Memory (float32 arrays, N = probe size, d = dimension, C = classes, B = 36 histogram bins):
    4·N·d (features) + 8·C·d (weights + centres) + 8·B (two histograms)
    (+ 4·C·K·d for sub-center ArcFace's K sub-centres)
    + 2 KB allowed for the numbers and hyper-parameters (`Snapshot.nbytes`).
Default probe (N = 1,000), C = 10: 2-D ≈ 10 KB, 3-D ≈ 14 KB per snapshot; the default
400-snapshot history is ≈ 4 MB (2-D) or ≈ 6 MB (3-D) per run, ≈ 25–35 MB for a six-run
comparison. `history_limit` also caps the count by a memory budget (RunConfig.history_memory_mb,
64 MB per run), so a high-dimensional run (N = 1,000, d = 512: 2 MB per snapshot) keeps at most
32 snapshots instead of growing to 800 MB.
The probe labels are stored once per run, not per snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from marginlab.geometry.angles import (
    nearest_other_angles,
    table3_statistics,
    target_angles,
    theta_histogram,
)

HISTOGRAM_BINS = 36  # 5° bins over [0, π]
HISTOGRAM_EDGES = np.linspace(0.0, math.pi, HISTOGRAM_BINS + 1)
_FIXED_BYTES = 2048  # numbers, hyper-parameters and Python object overhead, rounded up
_DROPPED_FIELDS = ("margin_per_class",)  # in older run files; see Snapshot.from_state


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One run at one step. Angles in radians; accuracies in [0, 1]."""

    step: int
    wall_time: float  # seconds of training (time inside step()) since the run started
    loss: float  # mean training loss over the steps since the previous snapshot
    train_acc: float  # running accuracy on the training batches since the previous snapshot
    test_acc: float  # accuracy on the probe set (see Run.probe_description)
    features: np.ndarray  # (N, d) float32 probe embeddings, eval mode, raw (unnormalised)
    weights: np.ndarray  # (C, d) float32 class weights, raw
    centers: np.ndarray | None  # (C, d) float32 centre-loss centres, or None
    stats: dict[str, float]  # ArcFace Table 3: w_ec, w_inter, intra, inter
    theta_target_hist: np.ndarray  # (36,) int32 counts of θ_y over [0, π]
    theta_other_hist: np.ndarray  # (36,) int32 counts of the nearest other-class angle
    params: dict[str, Any]  # hyper-parameters in force (head params, ramped margin, lr)
    skipped_steps: int = 0  # steps skipped for a non-finite loss, since the run started
    nonfinite_features: int = 0  # probe embeddings that were not finite (set to zero)
    # (C, K, d) float32 all sub-centres where a class has K > 1 (sub-center ArcFace), else None;
    # `weights` keeps the dominant one for W-EC / W-Inter (Table 3).
    subcenters: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The head's running state after this step (head.running_statistics(): AdaFace's
    # batch_mean and batch_std, CurricularFace's t, AdaCos's running_s); empty for most losses.
    state: dict[str, float] = field(default_factory=dict)

    @property
    def region_weights(self) -> np.ndarray:
        """The weights regions and predictions are drawn from: ALL sub-centres where there are
        several (max over k, as the loss and the accuracy use them), else `weights`."""
        return self.weights if self.subcenters is None else self.subcenters

    @property
    def nbytes(self) -> int:
        arrays = (
            self.features,
            self.weights,
            self.centers,
            self.theta_target_hist,
            self.theta_other_hist,
            self.subcenters,
        )
        return sum(a.nbytes for a in arrays if a is not None) + _FIXED_BYTES

    def metrics(self) -> dict[str, float]:
        """Flat numbers for training curves (figures.training_curves_figure takes a list)."""
        return {
            "step": float(self.step),
            "wall_time": self.wall_time,
            "loss": self.loss,
            "train_acc": self.train_acc,
            "test_acc": self.test_acc,
            **self.stats,
            **self.state,
        }

    def frame(self, labels: np.ndarray) -> dict[str, Any]:
        """The dict figures.replay_figure takes: step, features, labels, weights, loss name,
        s and the margin in force."""
        margin = {k: self.params[k] for k in ("m1", "m2", "m3", "sphere_m", "lam", "policy")}
        return {
            "step": self.step,
            "features": self.features,
            "labels": labels,
            "weights": self.region_weights,
            "loss": self.params["loss"],
            "s": self.params.get("s", 1.0),
            **margin,
        }

    def to_state(self) -> dict[str, Any]:
        """Tensors-free, pickle-free state: numpy arrays and primitives (for runs.py)."""
        return {
            "step": self.step,
            "wall_time": self.wall_time,
            "loss": self.loss,
            "train_acc": self.train_acc,
            "test_acc": self.test_acc,
            "features": self.features,
            "weights": self.weights,
            "centers": self.centers,
            "stats": dict(self.stats),
            "theta_target_hist": self.theta_target_hist,
            "theta_other_hist": self.theta_other_hist,
            "params": dict(self.params),
            "skipped_steps": self.skipped_steps,
            "nonfinite_features": self.nonfinite_features,
            "subcenters": self.subcenters,
            "state": dict(self.state),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Snapshot:
        # Files saved before the per-class "measured margin" was dropped still load.
        return cls(**{k: v for k, v in state.items() if k not in _DROPPED_FIELDS})


def build_snapshot(
    *,
    step: int,
    wall_time: float,
    loss: float,
    train_acc: float,
    features: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    weights: np.ndarray,
    centers: np.ndarray | None,
    params: Mapping[str, Any],
    skipped_steps: int,
    subcenters: np.ndarray | None = None,
    state: Mapping[str, float] | None = None,
) -> Snapshot:
    """A snapshot from host arrays; every statistic comes from marginlab.geometry.angles."""
    features = np.asarray(features, dtype=np.float32)
    bad_rows = ~np.isfinite(features).all(axis=1)
    if bad_rows.any():
        features = np.where(bad_rows[:, None], 0.0, features).astype(np.float32)
    weights = _finite(weights)
    labels = np.asarray(labels, dtype=np.int64)
    target = target_angles(features, labels, weights)
    other = nearest_other_angles(features, labels, weights)
    stats = {name: _finite_number(value) for name, value in table3_statistics(
        features, labels, weights).items()}  # fmt: skip
    test_acc = float(np.mean(np.asarray(predictions) == labels)) if len(labels) else 0.0
    return Snapshot(
        step=int(step),
        wall_time=float(wall_time),
        loss=_finite_number(loss),
        train_acc=_finite_number(train_acc),
        test_acc=test_acc,
        features=features,
        weights=weights,
        centers=None if centers is None else _finite(centers),
        stats=stats,
        theta_target_hist=theta_histogram(target, HISTOGRAM_BINS)[0].astype(np.int32),
        theta_other_hist=theta_histogram(other, HISTOGRAM_BINS)[0].astype(np.int32),
        params=dict(params),
        skipped_steps=int(skipped_steps),
        nonfinite_features=int(bad_rows.sum()),
        subcenters=None if subcenters is None or subcenters.shape[1] < 2 else _finite(subcenters),
        state={name: _finite_number(value) for name, value in (state or {}).items()},
    )


def history_limit(history_size: int, memory_mb: float, snapshot_bytes: int) -> int:
    """How many snapshots to keep: history_size, or fewer if they would exceed memory_mb."""
    by_memory = int(memory_mb * 1024 * 1024 // max(1, snapshot_bytes))
    return max(1, min(int(history_size), by_memory))


def _finite(array: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(array, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def _finite_number(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else 0.0
