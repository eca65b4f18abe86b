"""Verification metrics against hand-computed toys; identity splits; pairs; degenerate inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from marginlab.experiments import verification
from marginlab.experiments.verification import (
    evaluate_scores,
    make_pairs,
    pair_similarities,
    split_identities,
    tar_at_far,
    verify_embeddings,
)

# Toy A: four positive and four negative scores, no ties.
#   sorted: 0.9P 0.8P 0.7N 0.6P 0.4N 0.3P 0.2N 0.1N
# AUC = P(positive outranks negative) = (4 + 4 + 3 + 2) / 16 = 13/16 = 0.8125
#   (0.9 and 0.8 beat all four negatives, 0.6 beats 0.4/0.2/0.1, 0.3 beats 0.2/0.1).
# ROC points (accept score >= t), as (FAR, TAR):
#   t=inf (0,0); 0.9 (0,.25); 0.8 (0,.5); 0.7 (.25,.5); 0.6 (.25,.75); 0.4 (.5,.75);
#   0.3 (.5,1); 0.2 (.75,1); 0.1 (1,1).
# FRR = 1 - TAR equals FAR exactly at t=0.6: FAR = FRR = 0.25, so EER = 0.25 at threshold 0.6.
# TAR@FAR<=1%: only FAR-0 points qualify, the best is 0.5 (t=0.8). TAR@FAR<=25%: 0.75 (t=0.6).
# TAR@FAR<=50%: 1.0 (t=0.3).
TOY_A_POS = [0.9, 0.8, 0.6, 0.3]
TOY_A_NEG = [0.7, 0.4, 0.2, 0.1]

# Toy B: like A but a positive and a negative tie at 0.5, so the crossing is interpolated.
#   AUC = (4 + 4 + (2 + ½) + 2) / 16 = 12.5/16 = 0.78125 (a tie counts one half).
# ROC: inf (0,0); 0.9 (0,.25); 0.8 (0,.5); 0.7 (.25,.5); 0.5 (.5,.75); 0.3 (.5,1); ...
# FAR − FRR: at t=0.7 it is .25 − .5 = −.25, at t=0.5 it is .5 − .25 = +.25, so the crossing is
# halfway along that segment: EER = .25 + ½(.5 − .25) = 0.375, threshold ½(0.7 + 0.5) = 0.6.
TOY_B_POS = [0.9, 0.8, 0.5, 0.3]
TOY_B_NEG = [0.7, 0.5, 0.2, 0.1]


def _toy(pos, neg, **kwargs):
    scores = np.array(pos + neg)
    same = np.array([True] * len(pos) + [False] * len(neg))
    return evaluate_scores(scores, same, **kwargs)


def test_toy_a_hand_computed():
    report = _toy(TOY_A_POS, TOY_A_NEG, fars=(0.01, 0.25, 0.5))
    assert report.auc == pytest.approx(13 / 16)
    assert report.eer == pytest.approx(0.25)
    assert report.eer_threshold == pytest.approx(0.6)
    assert report.tar_at_far == pytest.approx({0.01: 0.5, 0.25: 0.75, 0.5: 1.0})
    np.testing.assert_allclose(report.fpr, [0, 0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 1])
    np.testing.assert_allclose(report.tpr, [0, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1, 1])
    # Hardest false match: the best-scoring negative (0.7, pair 4); hardest false non-match:
    # the worst-scoring positive (0.3, pair 3).
    assert report.hardest_false_match.pair_index == 4
    assert report.hardest_false_match.similarity == pytest.approx(0.7)
    assert report.hardest_false_non_match.pair_index == 3
    assert report.hardest_false_non_match.similarity == pytest.approx(0.3)
    assert report.n_positive == report.n_negative == 4


def test_toy_b_interpolated_eer():
    report = _toy(TOY_B_POS, TOY_B_NEG, fars=(0.01,))
    assert report.auc == pytest.approx(12.5 / 16)
    assert report.eer == pytest.approx(0.375)
    assert report.eer_threshold == pytest.approx(0.6)
    assert report.tar_at_far[0.01] == pytest.approx(0.5)


def test_perfect_and_inverted_separation():
    perfect = _toy([0.9, 0.8], [0.1, 0.2], fars=(0.0,))
    assert (perfect.auc, perfect.eer, perfect.tar_at_far[0.0]) == (1.0, 0.0, 1.0)
    inverted = _toy([0.1, 0.2], [0.9, 0.8], fars=(0.0,))
    assert (inverted.auc, inverted.eer, inverted.tar_at_far[0.0]) == (0.0, 1.0, 0.0)


def test_tar_at_far_takes_an_achievable_point_not_an_interpolation():
    fpr = np.array([0.0, 0.0, 0.02, 1.0])
    tpr = np.array([0.0, 0.4, 0.9, 1.0])
    assert tar_at_far(fpr, tpr, 0.01) == 0.4  # (0.02, 0.9) is over budget
    assert tar_at_far(fpr, tpr, 0.02) == 0.9
    with pytest.raises(ValueError, match="FAR"):
        tar_at_far(fpr, tpr, 1.5)


def test_constant_scores_have_defined_values():
    report = _toy([0.3] * 3, [0.3] * 5)
    assert report.auc == 0.5
    assert report.eer == 0.5
    assert report.eer_threshold == pytest.approx(0.3)
    assert all(tar == 0.0 for tar in report.tar_at_far.values())
    _assert_clean_json(report.to_json_dict(arrays=True))


@pytest.mark.parametrize("same", [[True] * 4, [False] * 4, []])
def test_one_kind_of_pair_is_a_clear_error(same):
    with pytest.raises(ValueError, match="both same-person and different-person"):
        evaluate_scores(np.linspace(0, 1, len(same)), same)


def test_non_finite_scores_are_an_error():
    with pytest.raises(ValueError, match="finite"):
        evaluate_scores([0.1, np.nan, 0.3, 0.4], [True, True, False, False])


def _assert_clean_json(data):
    text = json.dumps(data, allow_nan=False)  # raises on NaN or inf
    assert json.loads(text) == data


def test_report_json_is_plain_and_finite():
    report = _toy(TOY_A_POS, TOY_A_NEG, meta={"loss": "arcface"})
    data = report.to_json_dict()
    _assert_clean_json(data)
    assert data["tar_at_far"]["0.01"] == 0.5
    assert data["meta"] == {"loss": "arcface"}
    assert "roc" not in data
    full = report.to_json_dict(arrays=True)
    _assert_clean_json(full)
    assert len(full["roc"]["fpr"]) == len(report.fpr)
    assert len(full["pairs"]["similarity"]) == 8
    with pytest.raises(ValueError):
        report.similarities[0] = 1.0  # read-only


def test_angle_histograms_split_positive_and_negative():
    report = _toy(TOY_A_POS, TOY_A_NEG)
    hist = report.angle_histograms(bins=18)
    assert hist["positive"].sum() == 4 and hist["negative"].sum() == 4
    assert hist["edges"][0] == 0.0 and hist["edges"][-1] == pytest.approx(math.pi)
    # Higher cosine, smaller angle: the lowest occupied bin holds a positive (0.9), the highest a
    # negative (0.1).
    occupied = np.flatnonzero(hist["positive"] + hist["negative"])
    assert hist["positive"][occupied[0]] > 0 and hist["negative"][occupied[-1]] > 0
    assert report.hardest_false_non_match.angle == pytest.approx(math.acos(0.3))


# --------------------------------------------------------------------------- split and pairs


def test_split_identities_disjoint_complete_and_seeded():
    person_ids = np.repeat(np.arange(40), 10)
    train, verify = split_identities(person_ids, 30, seed=3)
    assert len(train) == 30 and len(verify) == 10
    assert not set(train) & set(verify)
    assert set(train) | set(verify) == set(range(40))
    again = split_identities(person_ids, 30, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, verify), again, strict=True))
    other = split_identities(person_ids, 30, seed=4)
    assert not np.array_equal(train, other[0])


@pytest.mark.parametrize("n_train", [1, 39, 40, 2.5, True])
def test_split_identities_rejects_impossible_counts(n_train):
    with pytest.raises(ValueError, match="n_train_people"):
        split_identities(np.arange(40), n_train)


def test_pairs_all_positives_and_balanced_negatives():
    labels = np.repeat(np.arange(10), 10)  # Olivetti's 10 held-out people
    pairs = make_pairs(labels, max_pairs_per_kind=10_000, seed=0)
    n_pos = int(pairs.same.sum())
    assert n_pos == 10 * 45 and len(pairs.same) == 2 * n_pos
    assert np.all((labels[pairs.first] == labels[pairs.second]) == pairs.same)
    assert np.all(pairs.first < pairs.second)
    codes = pairs.first * len(labels) + pairs.second
    assert len(np.unique(codes)) == len(codes)  # no pair twice
    again = make_pairs(labels, max_pairs_per_kind=10_000, seed=0)
    assert np.array_equal(pairs.first, again.first) and np.array_equal(pairs.second, again.second)


def test_pairs_capped_per_kind():
    labels = np.repeat(np.arange(3), 20)  # 3 x 190 positives, 1200 negatives
    pairs = make_pairs(labels, max_pairs_per_kind=100, seed=1)
    assert pairs.same.sum() == 100 and (~pairs.same).sum() == 100


def test_pairs_negatives_limited_by_what_exists():
    labels = np.array([0, 0, 0, 0, 1])  # 6 positives, only 4 negatives
    pairs = make_pairs(labels, seed=0)
    assert pairs.same.sum() == 6 and (~pairs.same).sum() == 4


def test_pairs_rejection_sampling_path(monkeypatch):
    monkeypatch.setattr(verification, "_ENUMERATE_MAX_IMAGES", 0)
    labels = np.repeat(np.arange(30), 4)  # 180 positives
    pairs = make_pairs(labels, max_pairs_per_kind=1_000, seed=0)
    negatives = ~pairs.same
    assert negatives.sum() == 180
    assert np.all(labels[pairs.first[negatives]] != labels[pairs.second[negatives]])
    assert np.all(pairs.first < pairs.second)
    codes = pairs.first[negatives] * 120 + pairs.second[negatives]
    assert len(np.unique(codes)) == 180


def test_singletons_give_no_pairs_and_a_clear_error():
    labels = np.arange(5)  # five people, one image each
    assert len(make_pairs(labels).same) == 0
    with pytest.raises(ValueError, match="both same-person"):
        verify_embeddings(np.eye(5), labels)


def test_similarities_are_cosines_and_zero_rows_are_safe():
    embeddings = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, -3.0]])
    pairs = verification.Pairs(np.array([0, 0, 0]), np.array([1, 2, 3]), np.array([1, 0, 0], bool))
    np.testing.assert_allclose(pair_similarities(embeddings, pairs), [math.sqrt(0.5), 0.0, 0.0])


def test_verify_embeddings_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.eye(4)
    labels = np.repeat(np.arange(4), 5)
    embeddings = centres[labels] + 0.05 * rng.standard_normal((20, 4))
    report = verify_embeddings(embeddings, labels, seed=0, meta={"loss": "toy"})
    assert report.auc == 1.0 and report.eer == 0.0
    assert report.tar_at_far[0.01] == 1.0
    i, j = report.hardest_false_match.first, report.hardest_false_match.second
    assert labels[i] != labels[j]
    _assert_clean_json(report.to_json_dict(arrays=True))
