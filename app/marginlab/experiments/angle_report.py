"""Angle statistics of a trained run on a named set of images: the leads (geometry.leads) and
the ArcFace paper's Table 3 (Deng et al., CVPR 2019), on the three sets the paper's table
distinguishes, each labelled:

- training images (the paper's Intra1 / Inter1, on CASIA);
- held-out images of the training classes (what the Lab's probe set is; the paper has no
  column for it: MNIST's test digits are new images of the same ten classes);
- unseen identities (the paper's Intra2 / Inter2, on LFW people nobody trained on): the Faces
  open-set run's held-out people. W-EC and W-Inter need a class weight, so they are left out.

The definitions are the paper's (its Table 3 caption), written out in `TABLE3_DEFINITIONS`.
W-EC measures how well each weight is ALIGNED with its class's feature centre; it says nothing
about how tight a class is (that is Intra).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from marginlab.figures.leads import summary_for
from marginlab.figures.style import margin_of
from marginlab.geometry.angles import feature_statistics, table3_statistics
from marginlab.training.run import Run

TABLE3_DEFINITIONS: dict[str, str] = {
    "W-EC": "mean angle between each class weight W_j and the centre of class j's features: "
    "how well a weight is aligned with its class (not how tight the class is)",
    "W-Inter": "mean over classes of the smallest angle between W_j and another class weight",
    "Intra": "mean angle between a feature and its class's feature centre: how tight classes are",
    "Inter": "mean over classes of the smallest angle between two feature centres: how far "
    "apart the classes are",
}
TRAINING_SET = "training images"
HELD_OUT_SET = "held-out images of the training classes"
UNSEEN_SET = "unseen identities"
TRAIN_SAMPLE = 1000  # training images embedded for the training-set row (a fixed subset)
_TRAIN_SAMPLE_SEED = 20_190_402


@dataclass(frozen=True)
class Table3Row:
    """Table 3 on one set of images. Angles in radians; None where undefined (no weights)."""

    set: str
    images: int
    intra: float
    inter: float
    w_ec: float | None = None
    w_inter: float | None = None
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    def degrees(self) -> dict[str, Any]:
        """A table row in degrees, labelled with the paper's names."""

        def deg(value: float | None) -> float | None:
            return None if value is None else round(math.degrees(value), 1)

        return {
            "set": self.set,
            "images": self.images,
            "W-EC °": deg(self.w_ec),
            "W-Inter °": deg(self.w_inter),
            "Intra °": deg(self.intra),
            "Inter °": deg(self.inter),
            "note": self.note,
        }


def run_params(run: Run) -> dict[str, Any]:
    """The loss and head parameters the run is ASKED to use (not the warm-up's partial margin)."""
    return {"loss": run.config.loss, **run.config.head_params()}


def head_weights(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """(C, d) class weights (the dominant sub-centre for sub-center ArcFace, as Table 3 takes
    one weight per class) and (C, K, d) all sub-centres (what the head classifies with)."""
    dominant = run.head.class_weights().float().cpu().numpy()
    subcentres = run.head.subcenter_weights().float().cpu().numpy()
    return dominant, subcentres


def embed(run: Run, images: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N, d) embeddings, non-finite rows set to zero (as snapshots do)."""
    features = run.embed(images)
    return np.where(np.isfinite(features).all(axis=1, keepdims=True), features, 0.0)


def angle_report(run: Run, images: torch.Tensor | np.ndarray, labels: Any) -> dict[str, float]:
    """The CLI's angle fields on these images at the current weights, in degrees / fractions:
    median_lead_deg, lead_positive, margin_met (geometry.leads, with the margin asked for),
    and the Table-3 statistics w_ec_deg, w_inter_deg, intra_deg, inter_deg."""
    labels = np.asarray(torch.as_tensor(labels).cpu().numpy(), dtype=np.int64)
    features = embed(run, images)
    dominant, subcentres = head_weights(run)
    params = run_params(run)
    summary = summary_for(
        features, labels, subcentres, loss=params["loss"], s=float(params["s"]),
        **margin_of(params, run.head.running_statistics()),
    )  # fmt: skip
    stats = table3_statistics(features, labels, dominant)
    return {
        "median_lead_deg": math.degrees(summary.median),
        "lead_positive": summary.positive,
        "margin_met": summary.met_fraction,
        **{f"{name}_deg": math.degrees(value) for name, value in stats.items()},
    }


def training_sample(run: Run, limit: int = TRAIN_SAMPLE) -> np.ndarray:
    """Indices of a fixed subset of the training images (the same for every run and seed)."""
    total = len(run.data.train_labels)
    if total <= limit:
        return np.arange(total)
    generator = torch.Generator().manual_seed(_TRAIN_SAMPLE_SEED)
    return np.sort(torch.randperm(total, generator=generator)[:limit].numpy())


def table3_row(
    name: str, features: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, note: str
) -> Table3Row:
    """Table 3 on one set; `weights` None for identities without a class weight."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) and np.unique(labels, return_counts=True)[1].max() == 1:
        note += "; one image per class, so Intra is 0 by definition"
    if weights is None:
        # Identities the head never saw: relabel them 0..P−1 and measure the features alone.
        dense = np.unique(labels, return_inverse=True)[1].astype(np.int64)
        stats = feature_statistics(features, dense)
        return Table3Row(name, len(labels), stats["intra"], stats["inter"], note=note)
    stats = table3_statistics(features, labels, weights)
    return Table3Row(
        name, len(labels), stats["intra"], stats["inter"], stats["w_ec"], stats["w_inter"], note
    )


def table3_sets(
    run: Run,
    *,
    unseen: tuple[np.ndarray, np.ndarray] | None = None,
    train_limit: int = TRAIN_SAMPLE,
) -> list[Table3Row]:
    """Table 3 at the run's current weights on the training images (a fixed subset of at most
    `train_limit`), the held-out images of the training classes (the probe set), and, when
    `unseen` = (images, identity labels) is given, people the run never trained on."""
    dominant, _ = head_weights(run)
    index = training_sample(run, train_limit)
    train_labels = run.data.train_labels.cpu().numpy()[index]
    train_images = run.data.train_images[torch.as_tensor(index).to(run.data.train_images.device)]
    total = len(run.data.train_labels)
    rows = [
        table3_row(
            TRAINING_SET,
            embed(run, train_images),
            train_labels,
            dominant,
            f"{len(index):,} of the {total:,} training images (the paper: Intra1, Inter1)",
        ),
        table3_row(
            HELD_OUT_SET,
            embed(run, run.data.probe_images),
            run.data.probe_labels,
            dominant,
            f"{run.probe_description}: new images of classes the model was trained on",
        ),
    ]
    if unseen is not None:
        images, people = unseen
        count = len(np.unique(people))
        rows.append(
            table3_row(
                UNSEEN_SET,
                embed(run, np.array(images)),
                people,
                None,
                f"{count} people the model never saw (the paper: Intra2, Inter2); no class "
                "weight, so no W-EC or W-Inter",
            )
        )
    return rows


def definitions_text(names: Mapping[str, str] = TABLE3_DEFINITIONS) -> str:
    """The paper's definitions as one line each (for captions and the CLI)."""
    return "\n".join(f"{name}: {text}." for name, text in names.items())
