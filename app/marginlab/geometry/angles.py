"""Angles between features and class weights, and the ArcFace paper's angle statistics.

Numpy in, numpy out, float64 inside, never NaN: the training engine calls these on every
snapshot, and a single NaN would poison a live chart. All angles are in radians.

Conventions for degenerate inputs (documented here, tested in tests/test_angles.py):
- A zero row (feature or weight) stays zero after `normalize_rows`; its cosine with anything
  is 0, i.e. it sits at π/2 from every direction.
- With a single class there is no "other" weight: `nearest_other_angles` returns π (no
  competitor can be farther away) and the "w_inter"/"inter" statistics are 0.0.
- A class without samples has no feature centre: it is left out of "w_ec" and "inter".
- Sub-centres (Deng et al., ECCV 2020): weights of shape (C, K, d) give θ_ij = the smallest
  angle from feature i to one of class j's K sub-centres, exactly as the head's cosine is the
  largest over its sub-centres.
"""

from __future__ import annotations

import numpy as np

# Rows shorter than this are treated as zero vectors (no direction).
_TINY = 1e-12


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero (no NaN)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    safe = np.where(norms > _TINY, norms, 1.0)
    return np.where(norms > _TINY, x / safe, 0.0)


# Up to this many dimensions, row dot products are summed in numpy instead of calling BLAS.
_SMALL_DIM = 8


def dot_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) dot products between the rows of `a` (N, d) and `b` (M, d).

    For the 2-D/3-D toys this sums d elementwise products instead of calling BLAS: a thin
    (N×3)·(3×C) product is tiny, and a multithreaded OpenBLAS on a busy 2-core machine was
    measured 300× slower on it (24 ms vs 0.08 ms) while its threads waited for the other core.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[-1] > _SMALL_DIM:
        return a @ b.T
    out = np.zeros((a.shape[0], b.shape[0]))
    for k in range(a.shape[-1]):
        out += a[:, k, None] * b[None, :, k]
    return out


def _angle_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles (radians) between every row of `a` and every row of `b`."""
    cos = dot_rows(normalize_rows(a), normalize_rows(b))
    return np.arccos(np.clip(cos, -1.0, 1.0))


def angles_to_weights(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N, C) angles θ_ij between feature i and class weight W_j, in [0, π].

    `weights` (C, d), or (C, K, d) for sub-centres: then θ_ij is the angle to the nearest of
    class j's sub-centres (the head's cos θ_j is the largest over k, and arccos is decreasing).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim == 3:
        n_classes, k, d = weights.shape
        theta = _angle_matrix(features, weights.reshape(n_classes * k, d))
        return theta.reshape(theta.shape[0], n_classes, k).min(axis=2)
    return _angle_matrix(features, weights)


def target_angles(features: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N,) θ_y: the angle from each feature to its own class weight."""
    theta = angles_to_weights(features, weights)
    labels = np.asarray(labels, dtype=np.int64)
    return theta[np.arange(len(labels)), labels]


def nearest_other_angles(
    features: np.ndarray, labels: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """(N,) the smallest angle from each feature to a weight of another class (π if none)."""
    theta = angles_to_weights(features, weights)
    labels = np.asarray(labels, dtype=np.int64)
    if theta.shape[1] < 2:
        return np.full(theta.shape[0], np.pi)
    theta[np.arange(len(labels)), labels] = np.inf
    return theta.min(axis=1)


def _class_centres(features: np.ndarray, labels: np.ndarray, n_classes: int):
    """Mean of the NORMALISED features of each class (the centre on the sphere), and a mask of
    the classes that have samples. Normalising first matches the paper's hypersphere view: a
    few long features must not pull the centre."""
    unit = normalize_rows(features)
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=n_classes)[:n_classes]
    sums = np.zeros((n_classes, unit.shape[1]))
    np.add.at(sums, labels, unit)
    present = counts > 0
    centres = np.where(present[:, None], sums / np.maximum(counts, 1)[:, None], 0.0)
    return centres, present


def _mean_nearest(angles: np.ndarray) -> float:
    """Mean over rows of the smallest off-diagonal entry of a square angle matrix (0 if < 2)."""
    if angles.shape[0] < 2:
        return 0.0
    angles = angles.copy()
    np.fill_diagonal(angles, np.inf)
    return float(angles.min(axis=1).mean())


def feature_statistics(
    features: np.ndarray, labels: np.ndarray, n_classes: int | None = None
) -> dict[str, float]:
    """Table 3's "intra" and "inter" (radians) from the features alone: what can be measured
    on identities without a class weight (the paper's Intra2 / Inter2 on unseen people).
    Labels are 0..n_classes−1 (default: up to the largest label); empty classes are left out."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return {"intra": 0.0, "inter": 0.0}
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    centres, present = _class_centres(features, labels, n_classes)
    own_centre = normalize_rows(centres)[labels]
    cos_intra = np.einsum("ij,ij->i", normalize_rows(features), own_centre)
    return {
        "intra": float(np.arccos(np.clip(cos_intra, -1.0, 1.0)).mean()),
        "inter": _mean_nearest(_angle_matrix(centres[present], centres[present])),
    }


def table3_statistics(
    features: np.ndarray, labels: np.ndarray, weights: np.ndarray
) -> dict[str, float]:
    """The angle statistics of ArcFace (Deng et al., CVPR 2019), Table 3, in radians.

    - "w_ec": mean angle between W_j and the centre of class j's features (how well each
      weight is aligned with its class, not how tight the class is);
    - "w_inter": mean over j of the smallest angle between W_j and another W_k;
    - "intra": mean angle between each feature and its class's feature centre;
    - "inter": mean over classes of the smallest angle between feature centres.
    Centres are means of normalised features; classes without samples are left out.
    """
    weights = np.asarray(weights, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n_classes = weights.shape[0]
    stats = {"w_ec": 0.0, "w_inter": 0.0, "intra": 0.0, "inter": 0.0}
    stats["w_inter"] = _mean_nearest(_angle_matrix(weights, weights))
    if len(labels) == 0:
        return stats
    centres, present = _class_centres(features, labels, n_classes)
    w_to_centre = np.einsum(
        "ij,ij->i", normalize_rows(weights[present]), normalize_rows(centres[present])
    )
    stats["w_ec"] = float(np.arccos(np.clip(w_to_centre, -1.0, 1.0)).mean())
    stats.update(feature_statistics(features, labels, n_classes))
    return stats


def sample_leads(features: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N,) the angular lead of each sample, radians: min over j ≠ y of θ_ij, minus θ_iy.

    The per-sample form of the margin ArcFace asks for (Deng et al., CVPR 2019, §2.1: the
    boundary of class y against j is θ_y + m = θ_j, so a sample is past it exactly when its
    lead is at least m). Positive exactly when the nearest normalised weight (or sub-centre,
    for (C, K, d) weights) belongs to the sample's own class; 0 on a tie; with one class the
    competitor sits at π (see `nearest_other_angles`).
    """
    theta = angles_to_weights(features, weights)
    labels = np.asarray(labels, dtype=np.int64)
    rows = np.arange(len(labels))
    own = theta[rows, labels]
    if theta.shape[1] < 2:
        return np.pi - own
    theta[rows, labels] = np.inf
    return theta.min(axis=1) - own


def theta_histogram(angles: np.ndarray, bins: int = 36) -> tuple[np.ndarray, np.ndarray]:
    """Counts and bin edges of angles over [0, π] (non-finite values are dropped)."""
    angles = np.asarray(angles, dtype=np.float64).ravel()
    angles = np.clip(angles[np.isfinite(angles)], 0.0, np.pi)
    counts, edges = np.histogram(angles, bins=bins, range=(0.0, np.pi))
    return counts, edges
