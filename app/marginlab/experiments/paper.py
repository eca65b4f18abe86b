"""Reproduce the paper: one item per figure or table of ArcFace (Deng, Guo, Xue, Zafeiriou,
CVPR 2019) that this app can make, each saying what the paper showed, what the app shows and
where the two differ (data scale, dimension, network).

    item = ITEMS["fig4b"]
    result = item.make(steps=item.default_steps, seed=0)   # PaperResult: figures, table, notes

Items that train (Fig. 3, 4a, Table 3, Fig. 6) live in paper_runs.py; the curves (Fig. 4b,
Fig. 5) are formulas and need no training. Everything builds offline except Fig. 6, which
needs faces of people never trained on (the Olivetti cache) and says so without them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from marginlab.experiments import paper_runs
from marginlab.experiments.paper_runs import PaperResult, Progress
from marginlab.figures import PAPER_CURVES, binary_boundary_figure, target_logit_figure
from marginlab.figures.style import margin_of
from marginlab.losses.margins import target_logit_np

# Fig. 4b's curves at these angles, unscaled (LOSSES.md, "Numbers to test against"), in the
# order of figures.PAPER_CURVES.
FIG4B_THETAS_DEG: tuple[int, ...] = (20, 30, 45, 60, 90, 100)
FIG4B_REFERENCE: tuple[tuple[float, ...], ...] = (
    (0.9397, 0.8660, 0.7071, 0.5000, 0.0000, -0.1736),
    (0.8120, 0.6384, 0.4226, 0.1667, -0.5000, -0.6837),
    (0.8910, 0.7604, 0.4886, 0.1564, -0.5225, -0.7071),
    (0.6607, 0.5203, 0.2815, 0.0236, -0.4794, -0.6245),
    (0.5897, 0.5160, 0.3571, 0.1500, -0.3500, -0.5236),
    (0.5966, 0.4796, 0.2666, 0.0217, -0.4955, -0.6569),
    (0.6056, 0.4939, 0.2975, 0.0763, -0.3905, -0.5394),
)


def target_logit_curves() -> PaperResult:
    """Fig. 4b: the seven target-logit curves, and their values beside the reference numbers."""
    figure = target_logit_figure(
        list(PAPER_CURVES),
        show_paper_curves=False,
        title="Target logit ψ(θ) of the margin family (ArcFace paper, Fig. 4b)",
    )
    cos = np.cos(np.radians(FIG4B_THETAS_DEG))
    rows, worst = [], 0.0
    for spec, reference in zip(PAPER_CURVES, FIG4B_REFERENCE, strict=True):
        values = target_logit_np(cos, loss=spec["loss"], **margin_of(spec))
        error = float(np.max(np.abs(values - np.asarray(reference))))
        worst = max(worst, error)
        row = {"curve": spec["label"]}
        row.update(
            {f"{t}°": round(float(v), 4) for t, v in zip(FIG4B_THETAS_DEG, values, strict=True)}
        )
        row["largest difference to the reference"] = round(error, 5)
        rows.append(row)
    note = (
        f"Largest difference between the app's curves and the reference values: {worst:.5f} "
        "(the reference is rounded to 4 decimals)."
    )
    return PaperResult((figure,), tuple(rows), (note,))


def decision_margins() -> PaperResult:
    """Fig. 5: the binary decision margins in the (θ1, θ2) plane."""
    figure = binary_boundary_figure(title="Decision margins of two classes (ArcFace paper, Fig. 5)")
    note = (
        "ArcFace (m = 0.5 rad): class 1 wins where θ2 > θ1 + 0.5, class 2 where θ1 > θ2 + 0.5, "
        f"so the grey band is |θ1 − θ2| < 0.5 rad ({math.degrees(0.5):.1f}°) wherever θ + m "
        "stays below π: the constant angular gap."
    )
    return PaperResult((figure,), (), (note,))


@dataclass(frozen=True)
class PaperItem:
    """One figure or table of the paper, with the three texts the page shows beside it."""

    key: str
    title: str
    paper: str  # what the paper showed
    app: str  # what the app shows
    differs: str  # where they differ
    default_steps: int  # 0: nothing to train
    build: Callable[..., PaperResult]

    def make(
        self, *, steps: int | None = None, seed: int = 0, progress: Progress | None = None
    ) -> PaperResult:
        """Build the item; training items take `steps` (default: `default_steps`)."""
        if not self.default_steps:
            return self.build()
        return self.build(steps=int(steps or self.default_steps), seed=seed, progress=progress)


ITEMS: dict[str, PaperItem] = {
    item.key: item
    for item in (
        PaperItem(
            "fig3",
            "Fig. 3: eight identities in 2-D, softmax and ArcFace",
            "A toy: 8 identities (about 1,500 face images each) with 2-D features, normalised "
            "onto a circle. With softmax the identities are separable but touch at their "
            "borders; with ArcFace an evident gap opens between the closest classes.",
            "The same toy on the lab's small CNN, softmax and ArcFace trained in lock-step (the "
            "same batches from the same start): 8 Olivetti people, 8 training images each, "
            "when the faces are in the cache, else the MNIST digits 0–7. ArcFace uses the lab's "
            "2-D setting s = 16, m = 0.2 rad with its 200-step margin warm-up. The circles show "
            "the training images; grey: where no class wins with its margin.",
            "Scale: 64 faces (or 5,440 digits) instead of about 12,000 faces; a four-layer CNN "
            "instead of a ResNet; s and m chosen for eight classes sharing a circle (45° each), "
            "not the paper's 512-D s = 64, m = 0.5.",
            600,
            paper_runs.identities_2d,
        ),
        PaperItem(
            "fig4a",
            "Fig. 4a: θ_y at the start and at the end of training",
            "The distribution of θ_y, the angle between each feature and its class centre W_y, "
            "during ArcFace training on CASIA-WebFace with 512-D features: it starts centred "
            "near 90° (random directions in 512-D are nearly orthogonal) and moves to much "
            "smaller angles as the features gather round their class centres.",
            "ArcFace on the shipped MNIST subset in 16-D with the lab's setting for that "
            "dimension (s = 30, m = 0.5 rad): θ_y of 1,000 held-out digits at step 0 and after "
            "training, then the end distribution under the ArcFace curve (Fig. 4b).",
            "16-D, not 512-D: at step 0 the angles spread wider around 90° (random angles "
            "concentrate like 1/√d); 10 digit classes instead of 10,575 identities; held-out "
            "digits instead of the training faces.",
            600,
            paper_runs.theta_shift,
        ),
        PaperItem(
            "fig4b",
            "Fig. 4b: target-logit curves",
            "The target logit against θ for softmax, SphereFace (m = 4 and the arccos form "
            "m1 = 1.35), ArcFace (m = 0.5), CosFace (m = 0.35) and the combined margins CM1 "
            "and CM2: where and how much each margin lowers the target logit.",
            "The same seven curves, computed by the one function the training heads use "
            "(margins.target_logit), and their values at 20°–100° beside the reference numbers.",
            "None for the curves: they are formulas. SphereFace (m = 4, λ = 5) is A-Softmax's "
            "(λ cos θ + ψ(θ))/(1 + λ) with ‖x‖ = 1; ArcFace past θ = π − m uses the released "
            "code's fallback cos θ − m·sin m.",
            0,
            target_logit_curves,
        ),
        PaperItem(
            "fig5",
            "Fig. 5: decision margins of two classes",
            "For two classes, in the plane of the angles θ1 and θ2 to the two weights: the "
            "decision boundary and the grey margin of softmax, SphereFace, CosFace and "
            "ArcFace; only ArcFace's is a constant angular gap (its boundary cos(θ1 + m) = "
            "cos θ2; the arXiv text lists the boundaries as Table 1).",
            "The same panels plus NormFace (cos θ1 = cos θ2), drawn from margins.target_logit "
            "with m = 4, 0.35 and 0.5.",
            "Softmax is drawn with ‖W1‖ = ‖W2‖ and no bias, where it equals NormFace; the "
            "paper's softmax boundary (W1 − W2)x + b1 − b2 = 0 depends on ‖x‖ and the bias.",
            0,
            decision_margins,
        ),
        PaperItem(
            "table3",
            "Table 3: angle statistics on three sets",
            "W-EC (weight ↔ its class's feature centre), W-Inter (weight ↔ nearest other "
            "weight), Intra1/Inter1 (feature ↔ own centre; centre ↔ nearest centre) on the "
            "CASIA-WebFace training set and Intra2/Inter2 on LFW, people never trained on, for "
            "each loss: the margin losses pull features closer to their centres than softmax.",
            "Softmax, NormFace (the paper's Norm-Softmax), SphereFace (A-Softmax, λ annealed), "
            "CosFace, ArcFace and softmax + center loss trained in lock-step in 16-D; the "
            "statistics on the training images, on held-out images of the training classes "
            "and on unseen identities: 10 Olivetti people when the faces are in the cache "
            "(trained on the other 30), else MNIST digits 6–9 (trained on 0–5).",
            "Scale: 30 people with 9 images (or 6 digits) instead of 10,575 identities; "
            "16-D instead of 512-D; 300 steps. On Olivetti the held-out set (one image per "
            "trained person) is left out: its Intra would be 0 by definition.",
            300,
            paper_runs.table3,
        ),
        PaperItem(
            "fig6",
            "Fig. 6: pair angles of people never trained on",
            "Angle distributions of same-person (positive) and random different-person "
            "(negative) pairs on six test sets (LFW, CFP-FP, AgeDB-30, YTF, CPLFW, CALFW) for "
            "an ArcFace model: positives at small angles, negatives near 90°, the overlap "
            "between them is what verification gets wrong.",
            "Softmax and ArcFace trained on 30 Olivetti people (32-D, 300 steps, flips and "
            "shifts), then every image of the other 10 people embedded: the angles of their "
            "same-person and different-person pairs, with AUC and TAR at FAR = 1 %.",
            "10 unseen people and 900 pairs instead of millions; 32-D; 30 training people "
            "instead of tens of thousands. Over five splits the two losses verify equally "
            "well (AUC softmax 0.961, ArcFace 0.958, ArcFace ahead in 3 of 5; "
            "benchmarks/README.md, bench_faces), so one run can show either loss ahead.",
            300,
            paper_runs.pair_angles_unseen,
        ),
    )
}
