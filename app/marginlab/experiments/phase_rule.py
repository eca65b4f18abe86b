"""What one phase-map cell measured, and the documented rule that names its phase.

A cell is one (s, m) setting trained from scratch with two or more seeds. After training, each
run is measured on the WHOLE test set (the images `Run.evaluate` uses):

- accuracy: argmax of the margin-free logits (what the model predicts with);
- p_true: the mean softmax probability of the right class, margin-free logits. With a small
  scale it stays low even when the argmax is right: with ten evenly spread weights on a
  circle and every feature on its own weight, the loss cannot go below
  log(1 + Σ_k exp(s (cos(2πk/10) − 1))) (NormFace, Wang et al. ACM MM 2017, §3.3), i.e.
  p_true ≤ 0.21 at s = 1, 0.48 at s = 4, 0.69 at s = 8;
- margin_met: the share of images inside their class's with-margin region, the loss's own test
  (the head's margin logits: z_y with the margin beats every other s cos θ_j); for ArcFace that
  is a lead min_j θ_j − θ_y of at least m;
- min_recall: the share of its test images the worst class gets right (0 when a class lost its
  whole region to its neighbours);
- skipped_steps: steps the engine's guard skipped for a non-finite loss or gradient.

The rule, first match wins (PHASES in this order; the thresholds are the constants below):
1. "NaN"            a seed had a non-finite step (skipped_steps > 0);
2. "collapsed"      in some seed a class is recognised on < 10 % of its images, or the accuracy
                    is at most twice chance: classes were squeezed out;
3. "unstable"       the seeds' accuracies differ by more than 15 points;
4. "underfits"      the mean p_true is below 0.5: right, but never sure (scale too small). It
                    comes before the margin: where s is this small the loss cannot enforce any
                    margin, so an unmet margin is the scale's doing;
5. "margin too large"  fewer than half the images (mean over seeds) meet the margin the loss
                    asks for: the classes have no room for it (e.g. ArcFace m ≥ 36° = 0.63 rad
                    for ten classes on a circle);
6. "works".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from marginlab.training.run import Run

PHASES: tuple[str, ...] = (
    "NaN",
    "collapsed",
    "unstable",
    "underfits",
    "margin too large",
    "works",
)
NOT_RUN = "not run"
MIN_RECALL = 0.10  # below: a class lost its region ("collapsed")
CHANCE_FACTOR = 2.0  # accuracy ≤ this × chance: "collapsed"
MAX_SPREAD = 0.15  # seeds' accuracies further apart than this: "unstable"
MIN_MARGIN_MET = 0.5  # fewer images than this meet the margin: "margin too large"
MIN_P_TRUE = 0.5  # the right class's probability below this: "underfits"
WHY: dict[str, str] = {
    "NaN": "a step had a non-finite loss or gradient (the guard skipped it)",
    "collapsed": f"a class was recognised on fewer than {MIN_RECALL:.0%} of its test images",
    "unstable": f"the seeds' test accuracies differ by more than {100 * MAX_SPREAD:.0f} points",
    "margin too large": (
        f"fewer than {MIN_MARGIN_MET:.0%} of the test images meet the margin the loss asks for"
    ),
    "underfits": (
        f"the right class gets less than {MIN_P_TRUE:.0%} probability on average: right but "
        "never sure (the scale s is too small)"
    ),
    "works": "none of the above",
}


@torch.no_grad()
def measure_run(run: Run) -> dict[str, float]:
    """The numbers the rule reads, for one trained run, on its whole test set (JSON-friendly)."""
    evaluation = run.evaluate()  # also puts the margin in force for this step into the head
    labels = run.data.test_labels
    features = torch.as_tensor(run.embed(run.data.test_images), device=run.device)
    plain = run.head.plain_logits(features)
    predictions = plain.argmax(1)
    p_true = torch.softmax(plain.double(), dim=1).gather(1, labels.long()[:, None])
    was_training = run.head.training
    run.head.eval()  # running statistics are read, not learned from test images; no draws
    with_margin = run.head(features, labels).argmax(1)
    run.head.train(was_training)
    right = (predictions == labels).cpu().numpy()
    labels_np = labels.cpu().numpy()
    recall = [float(right[labels_np == c].mean()) for c in np.unique(labels_np)]
    return {
        "accuracy": float(evaluation["test_acc"]),
        "test_loss": float(evaluation["test_loss"]),
        "p_true": _finite(p_true.mean()),
        "margin_met": float((with_margin == labels).double().mean()),
        "min_recall": min(recall, default=0.0),
        "skipped_steps": float(run.skipped_steps),
        "classes": float(run.data.num_classes),
    }


def _finite(value: torch.Tensor) -> float:
    number = float(value)
    return number if math.isfinite(number) else 0.0


def classify(seeds: Sequence[Mapping[str, float]]) -> str:
    """The phase of one cell from its runs' measurements (see the module doc for the rule)."""
    if not seeds:
        return NOT_RUN
    accuracy = [float(run["accuracy"]) for run in seeds]
    chance = 1.0 / max(float(seeds[0].get("classes", 10.0)), 1.0)
    if any(run["skipped_steps"] > 0 for run in seeds):
        return "NaN"
    if any(
        run["min_recall"] < MIN_RECALL or run["accuracy"] <= CHANCE_FACTOR * chance for run in seeds
    ):
        return "collapsed"
    if max(accuracy) - min(accuracy) > MAX_SPREAD:
        return "unstable"
    if statistics.fmean(run["p_true"] for run in seeds) < MIN_P_TRUE:
        return "underfits"
    if statistics.fmean(run["margin_met"] for run in seeds) < MIN_MARGIN_MET:
        return "margin too large"
    return "works"


def summary(seeds: Sequence[Mapping[str, float]]) -> dict[str, float | str | int]:
    """A cell in a few numbers: mean and spread (max − min) of the accuracy over the seeds,
    mean p_true and margin_met, and the phase."""
    if not seeds:
        return {"outcome": NOT_RUN, "runs": 0}
    accuracy = [float(run["accuracy"]) for run in seeds]
    return {
        "outcome": classify(seeds),
        "runs": len(seeds),
        "accuracy": statistics.fmean(accuracy),
        "spread": max(accuracy) - min(accuracy),
        "p_true": statistics.fmean(float(run["p_true"]) for run in seeds),
        "margin_met": statistics.fmean(float(run["margin_met"]) for run in seeds),
        "min_recall": min(float(run["min_recall"]) for run in seeds),
        "skipped_steps": int(sum(float(run["skipped_steps"]) for run in seeds)),
    }
