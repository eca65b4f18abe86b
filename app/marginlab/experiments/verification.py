"""Open-set face verification: identity-disjoint splits, pairs, cosine scores and their metrics.

A face model is judged on people it never saw in training: embed the images of held-out people,
score pairs of images by the cosine of their embeddings, and ask how well one threshold separates
same-person pairs ("positive", genuine) from different-person pairs ("negative", impostor).

    train_people, verify_people = split_identities(person_ids, 30, seed=0)
    report = verify_embeddings(embeddings, labels, max_pairs_per_kind=10_000, seed=0)
    report.auc, report.eer, report.tar_at_far[0.01]

Conventions (tested in tests/test_verification.py):
- A pair is *accepted* when its similarity is >= the threshold. FAR (false accept rate) = FPR,
  the share of negative pairs accepted; FRR (false reject rate) = 1 - TPR; TAR = TPR.
- EER is where the ROC curve crosses FRR = FAR, linearly interpolated between the two ROC points
  that bracket the crossing (the points of scikit-learn's roc_curve, no point dropped).
- TAR@FAR=f is the best TPR of any threshold whose FAR is <= f: an achievable operating point,
  never an interpolation between two.
- Both kinds of pair are required; anything else raises ValueError instead of giving NaN.
  Constant scores are legal: AUC 0.5, EER 0.5, TAR@FAR<1 = 0.

Numpy and scikit-learn only: the page, the CLI and the benchmarks all call this.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from marginlab.geometry.angles import normalize_rows, theta_histogram

DEFAULT_FARS: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
DEFAULT_MAX_PAIRS_PER_KIND = 10_000
# Up to this many images, different-person pairs are sampled from a full enumeration (exact,
# without replacement); above it (n(n-1)/2 would not fit comfortably) by rejection sampling.
_ENUMERATE_MAX_IMAGES = 2_000


# --------------------------------------------------------------------------- identities


def split_identities(
    person_ids: np.ndarray | Iterable[int], n_train_people: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split the distinct people into (train_people, verify_people), sorted, no one in both.

    Verification must be *open-set*: the people whose pairs are scored were never trained on,
    otherwise the test measures memorised identities rather than a general face embedding.
    """
    people = np.unique(np.asarray(person_ids, dtype=np.int64))
    if isinstance(n_train_people, bool) or int(n_train_people) != n_train_people:
        raise ValueError(f"n_train_people must be a whole number, got {n_train_people!r}")
    if not 2 <= n_train_people <= len(people) - 2:
        # Two trained people make a classifier; two held-out people make a negative pair.
        raise ValueError(
            f"n_train_people must lie in [2, {len(people) - 2}] for {len(people)} people "
            f"(at least two on each side), got {n_train_people}"
        )
    shuffled = np.random.default_rng(seed).permutation(people)
    n = int(n_train_people)
    return np.sort(shuffled[:n]), np.sort(shuffled[n:])


# --------------------------------------------------------------------------- pairs


class Pairs(NamedTuple):
    """Pairs of image indices: positives (same person) first, then negatives."""

    first: np.ndarray  # int64, (P,)
    second: np.ndarray  # int64, (P,), first < second
    same: np.ndarray  # bool, (P,)


def make_pairs(
    labels: np.ndarray | Iterable[int],
    *,
    max_pairs_per_kind: int = DEFAULT_MAX_PAIRS_PER_KIND,
    seed: int = 0,
) -> Pairs:
    """All same-person pairs (a seeded sample if more than `max_pairs_per_kind`) and as many
    different-person pairs, drawn without replacement (all of them if there are fewer).

    Balanced kinds keep the ROC's two axes equally precise: Olivetti's 10 held-out people give
    450 positives against 4,500 possible negatives.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1:
        raise ValueError("labels must be one-dimensional")
    if isinstance(max_pairs_per_kind, bool) or max_pairs_per_kind < 1:
        raise ValueError(f"max_pairs_per_kind must be a positive count, got {max_pairs_per_kind}")
    rng = np.random.default_rng(seed)
    positives = _positive_pairs(labels)
    if len(positives) > max_pairs_per_kind:
        keep = np.sort(rng.choice(len(positives), size=max_pairs_per_kind, replace=False))
        positives = positives[keep]
    n_negative = min(len(positives), _count_negatives(labels))  # positives are capped already
    negatives = _negative_pairs(labels, n_negative, rng)
    both = np.concatenate([positives, negatives]).reshape(-1, 2)
    same = np.concatenate([np.ones(len(positives), bool), np.zeros(len(negatives), bool)])
    return Pairs(both[:, 0].copy(), both[:, 1].copy(), same)


def _positive_pairs(labels: np.ndarray) -> np.ndarray:
    """(P, 2) every i < j with labels[i] == labels[j], person by person."""
    blocks = [np.empty((0, 2), np.int64)]
    for person in np.unique(labels):
        members = np.flatnonzero(labels == person)
        i, j = np.triu_indices(len(members), k=1)
        blocks.append(np.stack([members[i], members[j]], axis=1))
    return np.concatenate(blocks)


def _count_negatives(labels: np.ndarray) -> int:
    n = len(labels)
    counts = np.unique(labels, return_counts=True)[1]
    return int(n * (n - 1) // 2 - np.sum(counts * (counts - 1) // 2))


def _negative_pairs(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(k, 2) distinct different-person pairs i < j, sorted, drawn uniformly without replacement."""
    if k == 0:
        return np.empty((0, 2), np.int64)
    n = len(labels)
    if n <= _ENUMERATE_MAX_IMAGES:
        i, j = np.triu_indices(n, k=1)
        different = labels[i] != labels[j]
        pick = np.sort(rng.choice(int(different.sum()), size=k, replace=False))
        return np.stack([i[different][pick], j[different][pick]], axis=1)
    # Rejection sampling on pair codes i·n + j; k is at most max_pairs_per_kind, far below the
    # number of negatives of a data set this large, so few rounds are needed.
    codes = np.empty(0, np.int64)
    while len(codes) < k:
        a = rng.integers(0, n, size=2 * k)
        b = rng.integers(0, n, size=2 * k)
        keep = labels[a] != labels[b]
        lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
        codes = np.union1d(codes, lo * n + hi)  # sorted and unique
    codes = np.sort(rng.choice(codes, size=k, replace=False))
    return np.stack([codes // n, codes % n], axis=1)


def pair_similarities(embeddings: np.ndarray, pairs: Pairs) -> np.ndarray:
    """(P,) cosine similarity of each pair; a zero embedding has cosine 0 with everything."""
    unit = normalize_rows(np.asarray(embeddings, dtype=np.float64))
    cos = np.einsum("ij,ij->i", unit[pairs.first], unit[pairs.second])
    return np.clip(cos, -1.0, 1.0)


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class HardPair:
    """One pair singled out by its score: which images, and how similar they look."""

    pair_index: int  # row in the report's pair arrays
    first: int  # image index (into the embedded set)
    second: int
    similarity: float

    @property
    def angle(self) -> float:
        """The angle between the two embeddings, in radians."""
        return math.acos(max(-1.0, min(1.0, self.similarity)))


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays is meaningless
class VerificationReport:
    """Scores of verification pairs and what they say about the embedding (see module doc)."""

    auc: float
    eer: float
    eer_threshold: float  # the (interpolated) similarity threshold at the EER
    tar_at_far: Mapping[float, float]  # FAR -> best TAR with FAR <= it
    fpr: np.ndarray  # ROC curve, every threshold of roc_curve (nothing dropped)
    tpr: np.ndarray
    thresholds: np.ndarray  # thresholds[0] is +inf (accept nothing), as in scikit-learn
    similarities: np.ndarray  # (P,) cosine per pair
    same: np.ndarray  # (P,) bool, True for a same-person pair
    first: np.ndarray  # (P,) image indices of each pair
    second: np.ndarray
    hardest_false_match: HardPair  # the most similar different-person pair
    hardest_false_non_match: HardPair  # the least similar same-person pair
    meta: Mapping[str, Any] = field(default_factory=dict)  # free-form notes (loss, steps...)

    def __post_init__(self) -> None:
        for name in ("fpr", "tpr", "thresholds", "similarities", "same", "first", "second"):
            getattr(self, name).flags.writeable = False

    @property
    def n_positive(self) -> int:
        return int(self.same.sum())

    @property
    def n_negative(self) -> int:
        return int((~self.same).sum())

    def pair_angles(self) -> np.ndarray:
        """(P,) the angle between the two embeddings of each pair, in radians."""
        return np.arccos(np.clip(self.similarities, -1.0, 1.0))

    def angle_histograms(self, bins: int = 36) -> dict[str, np.ndarray]:
        """Counts of pair angles over [0, π] for same- and different-person pairs.

        The picture ArcFace (Deng et al., CVPR 2019) draws for LFW, CFP-FP, AgeDB and others:
        the wider the gap between the two humps, the safer any threshold in between.
        """
        angles = self.pair_angles()
        positive, edges = theta_histogram(angles[self.same], bins)
        negative, _ = theta_histogram(angles[~self.same], bins)
        return {"edges": edges, "positive": positive, "negative": negative}

    def to_json_dict(self, *, arrays: bool = False) -> dict[str, Any]:
        """Plain floats, ints and lists (no NaN, no inf); `arrays=True` adds the curve and
        every pair's score."""
        angles = self.pair_angles()
        out: dict[str, Any] = {
            "auc": float(self.auc),
            "eer": float(self.eer),
            "eer_threshold": float(self.eer_threshold),
            "tar_at_far": {_far_key(far): float(tar) for far, tar in self.tar_at_far.items()},
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
            "mean_positive_angle": _mean(angles[self.same]),
            "mean_negative_angle": _mean(angles[~self.same]),
            "hardest_false_match": _hard_json(self.hardest_false_match),
            "hardest_false_non_match": _hard_json(self.hardest_false_non_match),
            "meta": dict(self.meta),
        }
        if arrays:
            out["roc"] = {"fpr": self.fpr.tolist(), "tpr": self.tpr.tolist()}
            out["pairs"] = {
                "first": self.first.tolist(),
                "second": self.second.tolist(),
                "same": self.same.tolist(),
                "similarity": self.similarities.tolist(),
            }
        return out


def _far_key(far: float) -> str:
    return f"{far:g}"  # 0.01 -> "0.01", 0.001 -> "0.001"


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def _hard_json(pair: HardPair) -> dict[str, float | int]:
    return {
        "pair_index": pair.pair_index,
        "first": pair.first,
        "second": pair.second,
        "similarity": pair.similarity,
        "angle": pair.angle,
    }


def _check_scores(similarities: np.ndarray, same: np.ndarray) -> None:
    if similarities.ndim != 1 or similarities.shape != same.shape:
        raise ValueError("similarities and same must be 1-D arrays of equal length")
    if not np.all(np.isfinite(similarities)):
        raise ValueError("similarities must be finite (a NaN or inf score cannot be ranked)")
    n_positive = int(same.sum())
    if n_positive == 0 or n_positive == len(same):
        raise ValueError(
            f"verification needs both same-person and different-person pairs; got "
            f"{n_positive} same and {len(same) - n_positive} different "
            "(hold out at least two people, each with at least two images)"
        )


def equal_error_rate(
    fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray
) -> tuple[float, float]:
    """(EER, threshold) where FRR = 1 − TPR meets FAR = FPR, interpolated linearly.

    Along the ROC (thresholds falling) FAR − FRR rises from −1 at (0, 0) to +1 at (1, 1), so a
    crossing always exists. The threshold is interpolated too; the first point's +inf ("accept
    nothing") is replaced by the top score, so a crossing on the first segment sits there.
    """
    gap = fpr - (1.0 - tpr)
    k = int(np.argmax(gap >= 0))  # first point at or past the crossing
    finite = np.where(np.isfinite(thresholds), thresholds, thresholds[1])
    if gap[k] == 0 or k == 0:
        return float(fpr[k]), float(finite[k])
    t = gap[k - 1] / (gap[k - 1] - gap[k])  # gap[k-1] < 0 <= gap[k]: t in (0, 1]
    eer = fpr[k - 1] + t * (fpr[k] - fpr[k - 1])
    threshold = finite[k - 1] + t * (finite[k] - finite[k - 1])
    return float(eer), float(threshold)


def tar_at_far(fpr: np.ndarray, tpr: np.ndarray, far: float) -> float:
    """The best TPR of any ROC point with FPR <= `far` (0.0 when only 'accept nothing' is)."""
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"FAR must lie in [0, 1], got {far}")
    allowed = fpr <= far + 1e-12  # 1e-12: FARs like 0.3 are not exact binary fractions
    return float(tpr[allowed].max())  # fpr[0] = 0 is always allowed


def _hardest(similarities: np.ndarray, mask: np.ndarray, first, second, *, top: bool) -> HardPair:
    candidates = np.flatnonzero(mask)
    scores = similarities[candidates]
    index = int(candidates[np.argmax(scores) if top else np.argmin(scores)])
    return HardPair(index, int(first[index]), int(second[index]), float(similarities[index]))


def evaluate_scores(
    similarities: np.ndarray | Iterable[float],
    same: np.ndarray | Iterable[bool],
    *,
    first: np.ndarray | None = None,
    second: np.ndarray | None = None,
    fars: Iterable[float] = DEFAULT_FARS,
    meta: Mapping[str, Any] | None = None,
) -> VerificationReport:
    """The verification metrics of pair scores (higher = more alike) with their pair labels.

    `first`/`second` name the images of each pair (default: the pair's own index).
    """
    scores = np.asarray(similarities, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    _check_scores(scores, same)
    index = np.arange(len(scores), dtype=np.int64)
    first = index if first is None else np.asarray(first, dtype=np.int64)
    second = index if second is None else np.asarray(second, dtype=np.int64)
    # drop_intermediate=False: collinear points may be operating points that TAR@FAR needs.
    fpr, tpr, thresholds = roc_curve(same, scores, drop_intermediate=False)
    eer, eer_threshold = equal_error_rate(fpr, tpr, thresholds)
    return VerificationReport(
        auc=float(roc_auc_score(same, scores)),
        eer=eer,
        eer_threshold=eer_threshold,
        tar_at_far={float(far): tar_at_far(fpr, tpr, float(far)) for far in fars},
        fpr=fpr,
        tpr=tpr,
        thresholds=thresholds,
        similarities=scores.copy(),
        same=same.copy(),
        first=first.copy(),
        second=second.copy(),
        hardest_false_match=_hardest(scores, ~same, first, second, top=True),
        hardest_false_non_match=_hardest(scores, same, first, second, top=False),
        meta=dict(meta or {}),
    )


def verify_embeddings(
    embeddings: np.ndarray,
    labels: np.ndarray | Iterable[int],
    *,
    max_pairs_per_kind: int = DEFAULT_MAX_PAIRS_PER_KIND,
    seed: int = 0,
    fars: Iterable[float] = DEFAULT_FARS,
    meta: Mapping[str, Any] | None = None,
) -> VerificationReport:
    """Pairs of the labelled embeddings (see `make_pairs`), scored by cosine, then evaluated."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise ValueError("embeddings must be (N, d) with one label per row")
    pairs = make_pairs(labels, max_pairs_per_kind=max_pairs_per_kind, seed=seed)
    scores = pair_similarities(embeddings, pairs)
    return evaluate_scores(
        scores, pairs.same, first=pairs.first, second=pairs.second, fars=fars, meta=meta
    )
