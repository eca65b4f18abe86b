"""Decision regions and margin bands on the circle and the sphere, computed from `target_logit`.

Every region here is derived from marginlab.losses.margins.target_logit_np (DESIGN.md §3):
a direction
u belongs to class i "with margin" when s·ψ(cos θ_i) > max_{j≠i} s·cos θ_j, where ψ is the
loss's target logit. Directions that no class owns this way form the margin bands (label −1),
which the figures paint grey. There is no second copy of any margin formula in this file.

Also here: the icosphere mesh the sphere view paints per face, circle helpers, a projection of
d > 3 features to 3-D and pair-angle histograms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from marginlab.geometry.adaptive_regions import adaptive_leads
from marginlab.geometry.angles import dot_rows, normalize_rows, theta_histogram
from marginlab.losses.margins import target_logit_np
from marginlab.losses.registry import LOSS_NAMES, REGISTRY, loss_spec
from marginlab.params import MARGIN_PARAMS

# Losses whose regions are a plain argmax (no margin, no band): the registry says which. Center
# loss (Wen et al., ECCV 2016) is among them: its centre term moves features, not boundaries.
PLAIN_ARGMAX: tuple[str, ...] = tuple(name for name, spec in REGISTRY.items() if not spec.has_band)
REGION_LOSSES: tuple[str, ...] = LOSS_NAMES
BAND = -1


def class_cosines(directions: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N, C) cos θ between each direction and each class.

    `weights` is (C, d), or (C, K, d) for sub-centre ArcFace (Deng et al., ECCV 2020), where a
    class's cosine is the largest over its K sub-centres.
    """
    u = normalize_rows(directions)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 3:
        n_classes, k, d = w.shape
        cos = dot_rows(u, normalize_rows(w.reshape(n_classes * k, d)))
        return cos.reshape(len(u), n_classes, k).max(axis=2)
    return dot_rows(u, normalize_rows(w))


def raw_scores(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N, C) W_j·x with the weights' norms (softmax's logits without bias); for (C, K, d)
    weights the largest over each class's K vectors."""
    w = np.asarray(weights, dtype=np.float64)
    x = np.asarray(points, dtype=np.float64)
    if w.ndim == 3:
        n_classes, k, d = w.shape
        return dot_rows(x, w.reshape(n_classes * k, d)).reshape(len(x), n_classes, k).max(axis=2)
    return dot_rows(x, w)


def _max_other(z: np.ndarray) -> np.ndarray:
    """(N, C): for each entry, the largest logit among the OTHER classes of its row."""
    if z.shape[1] < 2:
        return np.full_like(z, -np.inf)
    # The two largest by argmax, not a sort of every row (half the time for the raw view's
    # 25,600 points); with a tie at the top both are the top value, as a sort gives them.
    rows, top = np.arange(len(z)), np.argmax(z, axis=1)
    top1 = z[rows, top]
    others = z.copy()
    others[rows, top] = -np.inf
    out = np.repeat(top1[:, None], z.shape[1], axis=1)
    out[rows, top] = others.max(axis=1)
    return out


def region_labels(
    directions: np.ndarray,
    weights: np.ndarray,
    *,
    loss: str,
    s: float,
    adaptive: Mapping[str, Any] | None = None,
    norm: float | None = None,
    **margin: Any,
) -> np.ndarray:
    """(N,) the class that owns each direction with margin, or −1 inside a margin band.

    `margin`: target_logit's keywords (m1, m2, m3, sphere_m, lam, policy), with its defaults;
    the loss's registry entry neutralises the ones it does not use.

    The post-2020 family (registry `adaptive`): `adaptive` holds the head's hyper-parameters
    and running state, and the head's own leads decide (geometry.adaptive_regions), at the
    norm `norm` or at each point's own length.

    Class i owns u when s·ψ(cos θ_i) > max_{j≠i} s·cos θ_j, ψ = target_logit of the loss's
    registry branch. The scale (s, or ‖x‖ for A-Softmax) multiplies both sides, so it cancels:
    `s` only keeps the signature. By the registry entry:
    - raw logits (softmax, center): argmax of W_j·u (weight norms count; the bias is ignored:
      with a bias the regions are not cones, see `raw_plane_regions`). No band.
    - no margin (normface): argmax of cos θ_j. No band.
    - weights (C, K, d) (sub-center ArcFace's sub-centres): cos θ_i = max over the K, as in the
      loss and the accuracy.
    If a margin is negative (e.g. m1 < 1), several classes may qualify: the one with the
    largest lead over its strongest rival wins.
    """
    unknown = sorted(set(margin) - set(MARGIN_PARAMS))
    if unknown:
        raise TypeError(f"region_labels() got unexpected keyword arguments {', '.join(unknown)}")
    spec = loss_spec(loss)
    directions = np.asarray(directions, dtype=np.float64)
    if spec.adaptive:
        values = {"s": s, **(adaptive or {})}
        lead = adaptive_leads(directions, weights, loss=loss, values=values, norm=norm)
        return _owner(lead)
    if spec.raw_logits:
        return np.argmax(raw_scores(normalize_rows(directions), weights), axis=1).astype(np.int64)
    cos = class_cosines(directions, weights)
    if not spec.has_band:
        return np.argmax(cos, axis=1).astype(np.int64)
    return _owner(target_logit_np(cos, **spec.margin_kwargs(margin)) - _max_other(cos))


def _owner(lead: np.ndarray) -> np.ndarray:
    """(N,) the class with the largest positive lead, or BAND where no lead is positive."""
    best = np.argmax(lead, axis=1)
    owned = np.take_along_axis(lead, best[:, None], axis=1)[:, 0] > 0
    return np.where(owned, best, BAND).astype(np.int64)


def predicted_labels(
    features: np.ndarray, weights: np.ndarray, *, loss: str, bias: np.ndarray | None = None
) -> np.ndarray:
    """(N,) the test-time class: no margin at test time (the papers classify by plain logits).

    Raw-logit losses (softmax, center) use W·x + b on the raw features; the normalised losses
    use argmax cos θ (the max over sub-centres for (C, K, d) weights).
    """
    x = np.asarray(features, dtype=np.float64)
    if loss_spec(loss).raw_logits:
        z = raw_scores(x, weights)
        if bias is not None:
            z = z + np.asarray(bias, dtype=np.float64)
        return np.argmax(z, axis=1).astype(np.int64)
    return np.argmax(class_cosines(x, weights), axis=1).astype(np.int64)


def raw_plane_regions(
    grid_xy: np.ndarray, weights: np.ndarray, bias: np.ndarray | None = None
) -> np.ndarray:
    """(N,) softmax's class at raw 2-D feature points: argmax_j W_j·x + b_j.

    With a bias the boundaries are straight lines that need not pass through the origin, so
    the regions live in the raw feature plane, not on the circle.
    """
    z = dot_rows(grid_xy, weights)
    if bias is not None:
        z = z + np.asarray(bias, dtype=np.float64)
    return np.argmax(z, axis=1).astype(np.int64)


# ---------------------------------------------------------------- circle


def circle_angles(n: int) -> np.ndarray:
    """n equally spaced polar angles φ in [0, 2π), radians."""
    return np.arange(n) * (2.0 * math.pi / n)


def circle_directions(n: int) -> np.ndarray:
    """(n, 2) unit vectors at `circle_angles(n)`."""
    phi = circle_angles(n)
    return np.stack([np.cos(phi), np.sin(phi)], axis=1)


class Arc(NamedTuple):
    """A maximal arc of equal labels on a uniformly sampled circle (radians, start < end)."""

    label: int
    start: float
    end: float


def circle_runs(labels: np.ndarray) -> list[Arc]:
    """Split labels sampled at `circle_angles(len(labels))` into arcs of equal label.

    Each sample stands for the arc of width 2π/n centred on it; an arc that wraps past 2π is
    returned as one run whose end exceeds 2π.
    """
    labels = np.asarray(labels)
    n = len(labels)
    step = 2.0 * math.pi / n
    if n == 0:
        return []
    if np.all(labels == labels[0]):
        return [Arc(int(labels[0]), -step / 2, 2.0 * math.pi - step / 2)]
    # Rotate so index 0 starts a run; then runs never wrap inside the array.
    change = np.flatnonzero(labels != np.roll(labels, 1))
    shift = int(change[0])
    rolled = np.roll(labels, -shift)
    starts = np.flatnonzero(rolled != np.roll(rolled, 1))
    ends = np.append(starts[1:], n)
    return [
        Arc(int(rolled[a]), float((a + shift - 0.5) * step), float((b + shift - 0.5) * step))
        for a, b in zip(starts, ends, strict=True)
    ]


def band_intervals(labels: np.ndarray) -> list[tuple[float, float]]:
    """The margin-band arcs (label −1) of labels sampled on the circle, as (start, end) radians."""
    return [(r.start, r.end) for r in circle_runs(labels) if r.label == BAND]


# ---------------------------------------------------------------- sphere

# Subdivisions of the icosphere: 4 gives 2,562 vertices / 5,120 faces with edges of 0.07–0.08
# rad (about 4.5°), enough for bands of m ≳ 0.1 rad; 5 (10,242 / 20,480, edges ≈ 2.2°) keeps a
# band of m = 0.05 rad visible as a continuous grey strip. 6 would cost ~2.5 MB of JSON.
DEFAULT_SUBDIVISIONS = 4
FINE_SUBDIVISIONS = 5
FINE_BAND_BELOW = 0.1  # radians


def subdivisions_for_band(band_width: float) -> int:
    """Icosphere subdivisions that make a margin band of `band_width` radians visible."""
    return FINE_SUBDIVISIONS if 0 < band_width < FINE_BAND_BELOW else DEFAULT_SUBDIVISIONS


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False  # cached arrays are shared: nobody may edit them in place
    return a


@lru_cache(maxsize=8)
def icosphere(subdivisions: int = DEFAULT_SUBDIVISIONS) -> tuple[np.ndarray, np.ndarray]:
    """Unit-sphere mesh: (V, 3) float64 vertices and (F, 3) int32 faces, cached, read-only.

    Subdividing an icosahedron gives nearly equal faces, unlike a latitude/longitude grid, so
    a band has the same look near the poles as at the equator. V = 10·4ⁿ + 2, F = 20·4ⁿ.
    """
    t = (1.0 + math.sqrt(5.0)) / 2.0
    verts = normalize_rows(
        np.array(
            [
                [-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0],
                [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
                [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1],
            ]
        )
    )  # fmt: skip
    faces = np.array(
        [
            [0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
            [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
            [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
            [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1],
        ],
        dtype=np.int64,
    )  # fmt: skip
    for _ in range(int(subdivisions)):
        a, b, c = faces.T
        edges = np.sort(np.concatenate([np.stack(p, 1) for p in ((a, b), (b, c), (c, a))]), 1)
        unique, inverse = np.unique(edges, axis=0, return_inverse=True)
        mids = normalize_rows(verts[unique[:, 0]] + verts[unique[:, 1]])
        ab, bc, ca = (len(verts) + inverse.reshape(-1)).reshape(3, -1)
        verts = np.vstack([verts, mids])
        faces = np.concatenate(
            [np.stack(f, 1) for f in ((a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca))]
        )
    return _frozen(verts), _frozen(faces.astype(np.int32))


@lru_cache(maxsize=8)
def icosphere_face_centres(subdivisions: int = DEFAULT_SUBDIVISIONS) -> np.ndarray:
    """(F, 3) unit directions through the centroids of the icosphere's faces (cached)."""
    verts, faces = icosphere(subdivisions)
    return _frozen(normalize_rows(verts[faces].mean(axis=1)))


def sphere_face_labels(
    weights: np.ndarray, *, loss: str, s: float, subdivisions: int = DEFAULT_SUBDIVISIONS, **margin
) -> np.ndarray:
    """(F,) region label of each icosphere face, from `region_labels` at the face centroids.

    Colouring per FACE (not per vertex) keeps each face one class: interpolated vertex colours
    would paint false classes along the borders (reference/STREAMLIT.md).
    """
    return region_labels(icosphere_face_centres(subdivisions), weights, loss=loss, s=s, **margin)


# ---------------------------------------------------------------- d > 3


class Projection3D(NamedTuple):
    """Features projected to 3-D and put back on the unit sphere. A projection, not the truth:
    angles in it are only approximately those of the d-D features."""

    points: np.ndarray  # (N, 3) unit rows (zero rows stay zero)
    basis: np.ndarray  # (d, 3) orthonormal columns
    explained: np.ndarray  # (3,) fraction of the second moment each axis keeps

    def project(self, x: np.ndarray) -> np.ndarray:
        """Put other d-D vectors (e.g. class weights, (C, d) or (C, K, d)) in the same view."""
        x = np.asarray(x, dtype=np.float64)
        flat = x.reshape(-1, x.shape[-1])
        out = normalize_rows(normalize_rows(flat) @ self.basis)
        return out.reshape(*x.shape[:-1], 3)


def pca_to_3d(features: np.ndarray) -> Projection3D:
    """Principal directions of the normalised features, WITHOUT centring.

    Uncentred PCA (of the second moment) keeps the origin at the origin, so a direction stays a
    direction and class weights can be projected with the same map; centring would move the
    sphere's centre and make angles meaningless. Signs are fixed (largest loading positive) so
    a replay does not flip from frame to frame at random.
    """
    unit = normalize_rows(features)
    n, d = unit.shape
    basis = np.zeros((d, 3))
    explained = np.zeros(3)
    if n and d:
        _, sing, vt = np.linalg.svd(unit, full_matrices=False)
        k = min(3, vt.shape[0])
        basis[:, :k] = vt[:k].T
        for col in range(k):
            if basis[np.argmax(np.abs(basis[:, col])), col] < 0:
                basis[:, col] *= -1
        total = float(np.sum(sing**2))
        if total > 0:
            explained[:k] = sing[:k] ** 2 / total
    return Projection3D(normalize_rows(unit @ basis), basis, explained)


def pair_angle_histograms(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    bins: int = 36,
    max_pairs: int = 20_000,
    seed: int = 0,
) -> dict[str, np.ndarray | int | bool]:
    """Angles between pairs of features: same class ("positive") vs different ("negative").

    All pairs when there are at most `max_pairs`, else `max_pairs` random pairs (seeded), so the
    cost stays flat for large N. Returns counts over [0, π] with their edges and pair counts.
    """
    unit = normalize_rows(features)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    total = n * (n - 1) // 2
    sampled = total > max_pairs
    if sampled:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, size=max_pairs)
        j = (i + rng.integers(1, n, size=max_pairs)) % n  # never i == j
    else:
        i, j = np.triu_indices(n, k=1)
    cos = np.einsum("ij,ij->i", unit[i], unit[j])
    theta = np.arccos(np.clip(cos, -1.0, 1.0))
    same = labels[i] == labels[j]
    positive, edges = theta_histogram(theta[same], bins)
    negative, _ = theta_histogram(theta[~same], bins)
    return {
        "edges": edges,
        "positive": positive,
        "negative": negative,
        "n_positive": int(same.sum()),
        "n_negative": int((~same).sum()),
        "sampled": bool(sampled),
    }
