"""Faces: augmentation, the Olivetti loader and datasets, and a short real open-set run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from marginlab.data.datasets import People
from marginlab.experiments import faces
from marginlab.experiments.face_data import (
    augment_batch,
    downsample,
    olivetti_faces,
    people_dataset,
)
from marginlab.experiments.verification import split_identities
from marginlab.training.backbones import state_hash

# --------------------------------------------------------------------------- augmentation


def _batch(shape=(6, 1, 12, 10)) -> torch.Tensor:
    return torch.arange(float(np.prod(shape))).reshape(shape)


@pytest.mark.parametrize("shape", [(6, 1, 12, 10), (6, 12, 10), (3, 2, 8, 8)])
def test_augment_keeps_shape_dtype_device(shape):
    images = _batch(shape).to(torch.float32)
    out = augment_batch(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.device == images.device


def test_augment_is_seeded():
    images = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(9))
    a = augment_batch(images, torch.Generator().manual_seed(1))
    b = augment_batch(images, torch.Generator().manual_seed(1))
    c = augment_batch(images, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, images)  # 16 images: some are flipped or shifted


def test_augment_without_shift_or_flip_is_identity():
    images = _batch()
    out = augment_batch(images, torch.Generator().manual_seed(0), max_shift=0, flip=False)
    assert torch.equal(out, images)


def test_augment_only_flips_and_shifts():
    """Each output image is its input, maybe mirrored, shifted by at most max_shift pixels
    (with the border replicated)."""
    images = torch.rand(32, 1, 10, 10, generator=torch.Generator().manual_seed(3))
    out = augment_batch(images, torch.Generator().manual_seed(4), max_shift=2)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2), mode="replicate")
    candidates = []
    for mirror in (False, True):
        source = padded.flip(-1) if mirror else padded
        for dy in range(5):
            for dx in range(5):
                candidates.append(source[..., dy : dy + 10, dx : dx + 10])
    stacked = torch.stack(candidates)  # (50, B, 1, 10, 10)
    matches = (stacked == out.unsqueeze(0)).flatten(2).all(dim=2)  # (50, B)
    assert bool(matches.any(dim=0).all())
    assert matches.float().argmax(dim=0).unique().numel() > 5  # transforms really vary


def test_augment_rejects_bad_input():
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(TypeError):
        augment_batch(torch.zeros(2, 4, 4, dtype=torch.uint8), gen)
    with pytest.raises(ValueError):
        augment_batch(torch.zeros(4, 4), gen)


# --------------------------------------------------------------------------- data


def test_downsample_is_block_mean():
    images = np.array([[[0, 2, 10, 10], [4, 6, 10, 10], [1, 1, 0, 0], [1, 2, 0, 255]]], np.uint8)
    np.testing.assert_array_equal(downsample(images, 2), [[[3, 10], [1, 64]]])
    with pytest.raises(ValueError):
        downsample(images, 3)


def test_olivetti_faces_from_the_real_cache(shared_data_dir):
    people = olivetti_faces(shared_data_dir, size=32, download=False)
    assert people.images.shape == (400, 32, 32) and people.images.dtype == np.uint8
    assert np.bincount(people.person_ids).tolist() == [10] * 40
    full = olivetti_faces(shared_data_dir, size=64, download=False)
    np.testing.assert_array_equal(downsample(full.images, 2), people.images)


def test_identity_split_of_olivetti(shared_data_dir):
    people = olivetti_faces(shared_data_dir, download=False)
    train, verify = split_identities(people.person_ids, 30, seed=0)
    dataset = people_dataset(people, train, test_per_person=2, seed=0)
    assert dataset.num_classes == 30
    assert len(dataset.train_labels) == 240 and len(dataset.test_labels) == 60
    assert set(dataset.train_labels.tolist()) == set(range(30))
    # No held-out person's image is in the training set.
    held_out = people.images[np.isin(people.person_ids, verify)]
    trained = {image.tobytes() for image in dataset.train_images}
    assert not trained & {image.tobytes() for image in held_out}
    assert dataset.class_names == tuple(people.names[p] for p in train)


def test_people_dataset_with_every_image_in_training():
    people = People(np.zeros((12, 4, 4), np.uint8), np.repeat(np.arange(4), 3), tuple("abcd"))
    dataset = people_dataset(people, np.array([3, 1]), test_per_person=0, seed=0)
    assert dataset.train_labels.tolist() == [1, 1, 1, 0, 0, 0]
    assert len(dataset.test_labels) == 0 and dataset.class_names == ("d", "b")


# --------------------------------------------------------------------------- experiments


def test_closed_set_config_eight_people(shared_data_dir):
    setup = faces.closed_set_config(
        ("softmax", "arcface"), dim=2, seed=1, data_home=shared_data_dir, download=False
    )
    dataset = setup.dataset
    assert dataset.num_classes == 8 and dataset.image_shape == (32, 32)
    assert np.bincount(dataset.train_labels).tolist() == [8] * 8
    assert np.bincount(dataset.test_labels).tolist() == [2] * 8
    assert [c.loss for c in setup.configs] == ["softmax", "arcface"]
    assert all(c.dim == 2 and c.batch_size == 32 and c.seed == 1 for c in setup.configs)
    comparison = setup.comparison("cpu")
    comparison.step(2)
    assert comparison.steps == 2
    assert len(set(comparison.init_hashes.values())) == 1
    three_d = faces.closed_set_config(
        ("cosface",), k=5, dim=3, s=20.0, data_home=shared_data_dir, download=False
    )
    assert three_d.dataset.num_classes == 5 and three_d.configs[0].s == 20.0
    with pytest.raises(ValueError, match="k must"):
        faces.closed_set_config(k=41, data_home=shared_data_dir, download=False)


def test_augmented_runs_stay_in_lockstep(shared_data_dir):
    """Two identical configs with augmentation plugged in see identical augmented batches, so
    they end with identical weights; eval mode (embedding) is not augmented."""
    setup = faces.closed_set_config(
        ("arcface", "arcface"), k=4, dim=3, data_home=shared_data_dir, download=False
    )
    comparison = setup.comparison("cpu", augment=True)
    first, second = comparison
    before = state_hash(first.backbone)
    comparison.step(3)
    assert first.steps == 3 and state_hash(first.backbone) == state_hash(second.backbone)
    assert state_hash(first.backbone) != before  # it did train
    images = np.array(setup.dataset.test_images)
    np.testing.assert_array_equal(first.embed(images), first.embed(images))


def test_short_open_set_run(shared_data_dir):
    seen = []
    reports = faces.run_open_set(
        ("softmax", "arcface"),
        steps=4,
        dim=8,
        seed=0,
        batch_size=32,
        data_home=shared_data_dir,
        download=False,
        device="cpu",
        progress=lambda fraction, text: seen.append(fraction),
    )
    assert list(reports) == ["softmax", "arcface"]
    for report in reports.values():
        assert 0.0 <= report.auc <= 1.0 and 0.0 <= report.eer <= 1.0
        assert np.isfinite(report.similarities).all()
        assert report.n_positive == 10 * 45 and report.n_negative == 450  # 10 held-out people
        assert set(report.meta["train_people"]).isdisjoint(report.meta["verify_people"])
        assert report.meta["steps"] == 4
        data = report.to_json_dict()
        assert json.loads(json.dumps(data, allow_nan=False)) == data
    # The same pairs for every loss: a paired comparison.
    softmax, arcface = reports.values()
    assert np.array_equal(softmax.first, arcface.first)
    assert np.array_equal(softmax.same, arcface.same)
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_cli_verify_prints_one_json_object(shared_data_dir, monkeypatch, capsys):
    from marginlab.cli import main

    monkeypatch.setenv("MARGINLAB_CACHE", str(shared_data_dir))  # the reference copy, offline
    argv = ["verify", "--losses", "arcface,softmax", "--dim", "4", "--steps", "1"]
    assert main([*argv, "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["losses"]) == ["arcface", "softmax"]
    for entry in result["losses"].values():
        assert 0.0 <= entry["auc"] <= 1.0 and 0.0 <= entry["tar_at_far_1pct"] <= 1.0
        assert entry["pairs"] == {"same": 450, "different": 450}
    assert result["config"]["steps"] == 1 and result["config"]["dim"] == 4
    assert result["losses"]["arcface"]["config"]["m2"] > 0  # the margin actually used
    assert main(["verify", "--losses", "nope", "--steps", "1"]) == 2
    assert "unknown loss" in capsys.readouterr().err
