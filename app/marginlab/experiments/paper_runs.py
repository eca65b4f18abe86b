"""The items of the "Reproduce the paper" page that train a model: ArcFace (Deng et al.,
CVPR 2019) Fig. 3, Fig. 4a, Table 3 and Fig. 6, each on real short runs of the lab's engine.

Faces come from the Olivetti cache when it is there (the Faces page downloads it once; the
tests point MARGINLAB_CACHE at ../shared/data); without it Fig. 3 and Table 3 use MNIST digits
from the shipped subset and say so, and Fig. 6, which needs unseen people, says what it needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from marginlab.data.batches import to_device
from marginlab.data.datasets import Dataset, DatasetUnavailable, load_dataset
from marginlab.experiments.angle_report import (
    HELD_OUT_SET,
    TRAIN_SAMPLE,
    TRAINING_SET,
    UNSEEN_SET,
    definitions_text,
    table3_sets,
)
from marginlab.experiments.faces import (
    FACE_LOSSES,
    closed_set_config,
    open_set_config,
    open_set_experiment,
)
from marginlab.figures import circle_figure, target_logit_figure
from marginlab.figures.paper import theta_shift_figure
from marginlab.figures.style import LOSS_NAMES, margin_label, margin_of
from marginlab.figures.verification import pair_angle_panels
from marginlab.geometry.angles import table3_statistics, target_angles
from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import default_config, pick_device
from marginlab.training.run import Progress, Run
from marginlab.training.snapshots import HISTOGRAM_EDGES

# Table 3's losses are the six the Faces page compares: softmax, NormFace, SphereFace,
# CosFace, ArcFace and softmax + center loss.
TABLE3_LOSSES: tuple[str, ...] = FACE_LOSSES
TABLE3_SEEN_DIGITS = (0, 1, 2, 3, 4, 5)  # offline Table 3: trained on these digits...
TABLE3_UNSEEN_DIGITS = (6, 7, 8, 9)  # ...its "unseen identities" are these
CHUNK = 25  # steps between progress reports


@dataclass(frozen=True)
class PaperResult:
    """What one item made: figures, table rows (plain values), measured notes, and why it
    could not be made (`skipped`, then everything else is empty)."""

    figures: tuple[go.Figure, ...] = ()
    table: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()
    skipped: str = ""


def _quiet(fraction: float, text: str) -> None:
    """The default progress callback: nobody is watching."""


def class_subset(dataset: Dataset, classes: Sequence[int]) -> Dataset:
    """The images of `classes` only, relabelled 0..K-1 in the order given (heads need
    contiguous labels)."""
    classes = [int(c) for c in classes]
    renumber = np.full(dataset.num_classes, -1, np.int64)
    renumber[classes] = np.arange(len(classes))

    def keep(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = np.isin(labels, classes)
        return np.array(images[mask]), renumber[labels[mask]]

    train_images, train_labels = keep(dataset.train_images, dataset.train_labels)
    test_images, test_labels = keep(dataset.test_images, dataset.test_labels)
    return Dataset(
        name=dataset.name,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        class_names=tuple(dataset.class_names[c] for c in classes),
        image_shape=dataset.image_shape,
        source=f"{dataset.source}: classes {', '.join(dataset.class_names[c] for c in classes)}",
        credit=dataset.credit,
    )


def _digits_comparison(losses: Sequence[str], classes: Sequence[int], dim: int, seed: int):
    dataset = class_subset(load_dataset("mnist-toy"), classes)
    configs = [default_config(loss, dim, "mnist-toy", seed=seed) for loss in losses]
    data = to_device(dataset, pick_device(configs[0].device), configs[0].probe_size)
    return LockstepComparison(configs, data=data), dataset


def _train(trainer: Run | LockstepComparison, steps: int, progress: Progress, part=(0.0, 1.0)):
    """`steps` steps in chunks; progress runs from part[0] to part[1]."""
    done = 0
    while done < steps:
        chunk = min(CHUNK, steps - done)
        trainer.step(chunk)
        done += chunk
        progress(part[0] + (part[1] - part[0]) * done / steps, f"training: step {done} of {steps}")


def _degrees(stats: dict[str, float]) -> dict[str, float]:
    return {key: round(math.degrees(value), 1) for key, value in stats.items()}


# --------------------------------------------------------------------------- Fig. 3


def identities_2d(
    *, steps: int = 600, seed: int = 0, progress: Progress | None = None
) -> PaperResult:
    """Fig. 3: eight identities with 2-D features, softmax and ArcFace trained in lock-step;
    the training images drawn on the circle (the paper's dots), with each class's weight."""
    progress = progress or _quiet
    losses = ("softmax", "arcface")
    try:
        setup = closed_set_config(losses, k=8, dim=2, seed=seed, download=False)
        comparison = setup.comparison(augment=True)
        dataset = setup.dataset
        source = "8 Olivetti people, 8 training images each (AT&T Laboratories Cambridge)"
    except DatasetUnavailable:
        comparison, dataset = _digits_comparison(losses, range(8), 2, seed)
        source = "MNIST digits 0–7 from the shipped subset (Olivetti is not in the cache)"
    _train(comparison, steps, progress)
    figures, rows = [], []
    images, labels = np.array(dataset.train_images), np.asarray(dataset.train_labels)
    for name, run in comparison.runs.items():
        params = run.current_params()
        features = run.embed(images)
        weights = run.head.class_weights().float().cpu().numpy()
        label = margin_label(name, params.get("s"), **margin_of(params))
        figures.append(
            circle_figure(
                features,
                labels,
                weights,
                loss=name,
                s=float(params["s"]),
                names=dataset.class_names,
                jitter=0.04,
                title=f"{label}: training images after {steps} steps",
                **margin_of(params),
            )
        )
        stats = _degrees(table3_statistics(features, labels, weights))
        rows.append(
            {
                "loss": label,
                "held-out accuracy %": round(100 * run.evaluate()["test_acc"], 1),
                "Intra ° (training images)": stats["intra"],
                "Inter ° (training images)": stats["inter"],
            }
        )
    return PaperResult(tuple(figures), tuple(rows), (f"Data: {source}.",))


# --------------------------------------------------------------------------- Fig. 4a


def theta_shift(
    *, steps: int = 600, seed: int = 0, dim: int = 16, progress: Progress | None = None
) -> PaperResult:
    """Fig. 4a: θ_y of the held-out probe images at step 0 and after `steps` steps of ArcFace
    (the lab's defaults for `dim`), and the end distribution under the ArcFace curve (Fig. 4b)."""
    progress = progress or _quiet
    run = Run(default_config("arcface", dim, "mnist-toy", seed=seed))
    start = run.snapshot()
    _train(run, steps, progress)
    end = run.snapshot()
    shift = theta_shift_figure(
        HISTOGRAM_EDGES,
        start.theta_target_hist,
        end.theta_target_hist,
        start_step=start.step,
        end_step=end.step,
        title=f"θ_y of ArcFace in {dim}-D: step 0 and step {end.step} (ArcFace paper, Fig. 4a)",
    )
    params = run.current_params()
    spec = {
        "loss": "arcface",
        **margin_of(params),
        "label": margin_label("arcface", params["s"], **margin_of(params)),
    }
    labels = run.data.probe_labels
    curve = target_logit_figure(spec, theta_y=target_angles(end.features, labels, end.weights))
    start_mean = math.degrees(float(target_angles(start.features, labels, start.weights).mean()))
    end_mean = math.degrees(float(target_angles(end.features, labels, end.weights).mean()))
    notes = (
        f"Mean θ_y of {len(labels)} held-out digits: {start_mean:.1f}° at step 0, "
        f"{end_mean:.1f}° at step {end.step} ({100 * end.test_acc:.1f} % right).",
    )
    return PaperResult((shift, curve), (), notes)


# --------------------------------------------------------------------------- Table 3


SHORT_SET_NAMES = {TRAINING_SET: "training", HELD_OUT_SET: "held-out", UNSEEN_SET: "unseen"}


def _table3_row(name: str, run: Run, unseen: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """One loss's row: W-EC and W-Inter (training set), Intra and Inter on every set that has
    two or more images per class (with one, Intra is 0 by definition)."""
    row: dict[str, Any] = {"loss": LOSS_NAMES.get(run.config.loss, name)}
    per_class = np.bincount(run.data.probe_labels)
    for stats in table3_sets(run, unseen=unseen):
        if stats.set == HELD_OUT_SET and per_class.min(initial=len(per_class)) < 2:
            continue
        values = stats.degrees()
        if stats.set == TRAINING_SET:
            row["W-EC °"], row["W-Inter °"] = values["W-EC °"], values["W-Inter °"]
        short = SHORT_SET_NAMES[stats.set]
        row[f"Intra ° ({short})"], row[f"Inter ° ({short})"] = values["Intra °"], values["Inter °"]
    return row


def table3(
    *, steps: int = 300, seed: int = 0, dim: int = 16, progress: Progress | None = None
) -> PaperResult:
    """Table 3: W-EC, W-Inter and Intra/Inter on three sets (training images, held-out images
    of the training classes, unseen identities) for six losses trained in lock-step."""
    progress = progress or _quiet
    try:
        setup = open_set_config(TABLE3_LOSSES, dim=dim, steps=steps, seed=seed, download=False)
    except DatasetUnavailable:
        setup = None
    if setup is not None:
        result = open_set_experiment(setup, progress=lambda f, t: progress(0.95 * f, t))
        comparison, dataset = result.comparison, setup.dataset
        unseen_ids = np.unique(setup.verify_labels)
        unseen = (np.array(setup.verify_images), np.searchsorted(unseen_ids, setup.verify_labels))
        source = (
            f"Olivetti: {len(setup.train_people)} people trained (9 images each; 1 held out "
            f"each), {len(unseen_ids)} unseen people (10 images each)"
        )
    else:
        comparison, dataset = _digits_comparison(TABLE3_LOSSES, TABLE3_SEEN_DIGITS, dim, seed)
        _train(comparison, steps, progress, (0.0, 0.95))
        rest = class_subset(load_dataset("mnist-toy"), TABLE3_UNSEEN_DIGITS)
        unseen = (np.array(rest.test_images), np.asarray(rest.test_labels))
        source = (
            "MNIST digits 0–5 trained, digits 6–9 as the unseen identities (Olivetti is not in "
            "the cache)"
        )
    notes = [f"Data: {source}; {dim}-D features, {steps} steps, the same batches for all."]
    if np.bincount(np.asarray(dataset.test_labels)).min() < 2:
        notes.append("One held-out image per trained person: that set is left out.")
    notes.append(f"Training set: {TRAIN_SAMPLE:,} training images at most (a fixed subset).")
    notes += definitions_text().splitlines()
    rows = [_table3_row(name, run, unseen) for name, run in comparison.runs.items()]
    progress(1.0, "done")
    return PaperResult((), tuple(rows), tuple(notes))


# --------------------------------------------------------------------------- Fig. 6


def pair_angles_unseen(
    *, steps: int = 300, seed: int = 0, progress: Progress | None = None
) -> PaperResult:
    """Fig. 6: angles between the embeddings of same-person and different-person pairs of
    people never trained on (Olivetti open set), softmax and ArcFace."""
    progress = progress or _quiet
    try:
        setup = open_set_config(("softmax", "arcface"), steps=steps, seed=seed)
    except DatasetUnavailable as error:
        return PaperResult(skipped=f"Fig. 6 needs faces of people never trained on. {error}")
    result = open_set_experiment(setup, progress=progress)
    reports = {LOSS_NAMES[name]: report for name, report in result.reports.items()}
    rows = []
    for name, report in reports.items():
        summary = report.to_json_dict()
        rows.append(
            {
                "loss": name,
                "mean angle, same person °": round(math.degrees(summary["mean_positive_angle"]), 1),
                "mean angle, different people °": round(
                    math.degrees(summary["mean_negative_angle"]), 1
                ),
                "AUC": round(report.auc, 3),
                "TAR @ FAR 1 %": round(report.tar_at_far[0.01], 3),
                "pairs (same / different)": f"{report.n_positive} / {report.n_negative}",
            }
        )
    notes = (
        f"{len(setup.train_people)} Olivetti people trained, {len(setup.verify_people)} unseen "
        f"people verified, {steps} steps, {setup.configs[0].dim}-D.",
    )
    return PaperResult((pair_angle_panels(reports),), tuple(rows), notes)
