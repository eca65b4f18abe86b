"""Per-sample leads and "margin met": how far each sample is past its class boundary.

The lead of a sample is the angle to the nearest OTHER class weight minus the angle to its own
(`angles.sample_leads`). Its median says where the typical sample sits; "margin met" is the
fraction of samples the loss itself would count as past the margin:
- a loss with an angular margin m (ArcFace; the registry's requested margin of the others):
  lead ≥ m, which is ArcFace's boundary θ_y + m = θ_j (Deng et al., CVPR 2019, §2.1);
- a loss without one (CosFace's margin is in cosine, SphereFace's multiplies the angle, the
  plain losses have none): the sample lies inside its class's with-margin region, the same
  `regions.region_labels` test the circle and the sphere paint.

A single outlier cannot move either number much, which is why they replaced the old
"smallest nearest-other angle minus largest own angle of a class" (two different samples, set
by the worst one: −150° to −180° even at 97 % accuracy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from marginlab.geometry.angles import sample_leads
from marginlab.geometry.regions import region_labels


@dataclass(frozen=True, eq=False)
class LeadSummary:
    """Leads of a set of samples and which of them meet the margin. Angles in radians."""

    leads: np.ndarray  # (N,) float64
    met: np.ndarray  # (N,) bool: the sample is past the margin (see `margin_test`)
    requested: float | None  # the angular margin tested against, or None (region test)
    labels: np.ndarray  # (N,) int64

    @property
    def median(self) -> float:
        return float(np.median(self.leads)) if len(self.leads) else 0.0

    @property
    def positive(self) -> float:
        """Fraction with lead > 0: the nearest normalised weight is the right class."""
        return float(np.mean(self.leads > 0)) if len(self.leads) else 0.0

    @property
    def met_fraction(self) -> float:
        return float(np.mean(self.met)) if len(self.met) else 0.0

    def met_by_class(self) -> dict[int, float]:
        """Fraction meeting the margin, per class that has samples."""
        return {int(c): float(np.mean(self.met[self.labels == c])) for c in np.unique(self.labels)}

    def lowest_class(self) -> tuple[int, float] | None:
        """(class, fraction) of the class that meets the margin least often (None if empty)."""
        per_class = self.met_by_class()
        if not per_class:
            return None
        worst = min(per_class, key=lambda c: (per_class[c], c))
        return worst, per_class[worst]

    @property
    def margin_test(self) -> str:
        """The test in words, for captions."""
        if self.requested is None:
            return "inside its class's with-margin region"
        return f"lead ≥ m = {math.degrees(self.requested):.1f}°"


def lead_summary(
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    *,
    loss: str,
    requested_margin: float | None,
    s: float = 1.0,
    **margin,
) -> LeadSummary:
    """Leads and "margin met" of `features` against `weights` ((C, d) or (C, K, d)).

    `requested_margin` (radians) is the loss's angular margin, or None for the region test
    with `loss`, `s` and `margin` (m1, m2, m3, sphere_m, lam, policy). s cancels from the
    region test (every logit is scaled by it), so the default 1.0 is exact for any loss.
    """
    labels = np.asarray(labels, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim == 3 and weights.shape[1] == 1:
        weights = weights[:, 0]  # one sub-centre per class is a plain weight matrix
    leads = sample_leads(features, labels, weights)
    if requested_margin is not None:
        met = leads >= float(requested_margin)
    elif len(labels):
        owner = region_labels(features, weights, loss=loss, s=s, **margin)
        met = owner == labels
    else:
        met = np.zeros(0, dtype=bool)
    return LeadSummary(leads=leads, met=met, requested=requested_margin, labels=labels)
