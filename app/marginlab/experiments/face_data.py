"""Face images for the experiments: Olivetti at a chosen size, a Dataset of chosen people, and
the augmentation for small face images (flip and shift, batch-wise, on the device, seeded by a
torch.Generator): with 9 images per person even a small CNN memorises the training set.

The experiments that use them live in faces.py.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from marginlab.data.datasets import (
    OLIVETTI_CREDIT,
    Dataset,
    People,
    load_olivetti_people,
    split_per_person,
)

DEFAULT_FACE_SIZE = 32  # Olivetti's 64x64 shrunk 2x: see `downsample`
DEFAULT_MAX_SHIFT = 2  # pixels at 32x32 (about 6% of the width); faces are roughly centred


def augment_batch(
    images: torch.Tensor,
    generator: torch.Generator,
    *,
    max_shift: int = DEFAULT_MAX_SHIFT,
    flip: bool = True,
) -> torch.Tensor:
    """Random horizontal flip and random shift of up to `max_shift` pixels, per image.

    `images` is (B, H, W) or (B, C, H, W), floating point, on any device; the result has the
    same shape, dtype and device. A shift is a crop of the image padded by replicating its
    border (a face's dark background continues, no black frame appears). All randomness comes
    from `generator` (drawn on its own device), so the same seed gives the same batch.
    """
    if not images.is_floating_point():
        raise TypeError(f"augment_batch needs floating-point images, got {images.dtype}")
    if images.dim() not in (3, 4):
        raise ValueError(f"images must be (B, H, W) or (B, C, H, W), got {tuple(images.shape)}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    x = images if images.dim() == 4 else images.unsqueeze(1)
    batch, _, height, width = x.shape
    rows, cols = _shifted_grid(batch, height, width, max_shift, flip, generator, x.device)
    padded = F.pad(x, (max_shift,) * 4, mode="replicate") if max_shift else x
    # One gather for the whole batch: out[b, c, i, j] = padded[b, c, rows[b, i], cols[b, j]].
    b = torch.arange(batch, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]]
    out = out.permute(0, 3, 1, 2)
    return out.contiguous() if images.dim() == 4 else out[:, 0].contiguous()


def _shifted_grid(
    batch: int,
    height: int,
    width: int,
    max_shift: int,
    flip: bool,
    generator: torch.Generator,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H) row and (B, W) column indices into the padded images: shifted, maybe mirrored."""
    draw_on = generator.device
    shifts = torch.randint(0, 2 * max_shift + 1, (2, batch), generator=generator, device=draw_on)
    mirrored = torch.rand(batch, generator=generator, device=draw_on) < 0.5
    shifts, mirrored = shifts.to(device), mirrored.to(device)
    rows = torch.arange(height, device=device)[None, :] + shifts[0][:, None]
    cols = torch.arange(width, device=device)[None, :]
    if flip:
        cols = torch.where(mirrored[:, None], width - 1 - cols, cols)
    return rows, cols + shifts[1][:, None]


def augment_faces(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The engine's augmentation hook (training.run.Augment) for faces: a stored uint8 batch
    to [0, 1] floats, flipped and shifted by `augment_batch`. Each run of a comparison gets its
    own generator with the same seed, so the lock-step runs still see identical batches."""
    floats = images.float() / 255.0 if images.dtype == torch.uint8 else images
    return augment_batch(floats, generator)


def downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """uint8 images shrunk by an integer factor, each new pixel the rounded mean of a block.

    Olivetti's 64x64 faces at 32x32 keep identity (eyes, nose, hairline) and cost a quarter of
    the convolutions, which is what lets six losses train on a CPU within a minute.
    """
    images = np.asarray(images)
    if factor == 1:
        return images
    n, height, width = images.shape
    if factor < 1 or height % factor or width % factor:
        raise ValueError(f"cannot shrink {height}x{width} images by a factor of {factor}")
    blocks = images.reshape(n, height // factor, factor, width // factor, factor)
    return np.round(blocks.mean(axis=(2, 4))).astype(np.uint8)


def olivetti_faces(
    data_home: str | os.PathLike[str] | None = None,
    *,
    size: int = DEFAULT_FACE_SIZE,
    download: bool = True,
) -> People:
    """All 400 Olivetti faces at `size` x `size` (64 = as published, 32 or 16 = shrunk)."""
    people = load_olivetti_people(data_home, download=download)
    factor, rest = divmod(people.images.shape[1], size)
    if rest or factor < 1:
        raise ValueError(f"size must divide {people.images.shape[1]}, got {size}")
    return people._replace(images=downsample(people.images, factor))


def people_dataset(
    people: People,
    chosen: np.ndarray,
    *,
    test_per_person: int,
    seed: int,
    name: str = "olivetti",
) -> Dataset:
    """A Dataset of the `chosen` people only, labels renumbered 0..K-1 in the order given.

    The heads need contiguous class indices; `class_names` keeps who each class is.
    ``test_per_person=0`` puts every image in training (the test split is then empty).
    """
    chosen = np.asarray(chosen, dtype=np.int64)
    keep = np.flatnonzero(np.isin(people.person_ids, chosen))
    renumber = np.full(int(people.person_ids.max()) + 1, -1, np.int64)
    renumber[chosen] = np.arange(len(chosen))
    labels = renumber[people.person_ids[keep]]
    images = people.images[keep]
    if test_per_person:
        train, test = split_per_person(labels, test_per_person=test_per_person, seed=seed)
    else:
        train, test = np.arange(len(keep)), np.arange(0)
    size = images.shape[1]
    return Dataset(
        name=name,
        train_images=images[train],
        train_labels=labels[train],
        test_images=images[test],
        test_labels=labels[test],
        class_names=tuple(people.names[p] for p in chosen),
        image_shape=tuple(images.shape[1:]),
        source=(
            f"Olivetti faces: {len(chosen)} of {len(people.names)} people, "
            f"{len(train)} training and {len(test)} test images at {size}x{size}"
        ),
        credit=OLIVETTI_CREDIT,
    )
