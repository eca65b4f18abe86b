"""Full MNIST: the four IDX files of the original distribution, downloaded once, verified, cached.

Downloads and the cache are bounded and shared safely: a response or a cached file is read up
to a bound (a .gz is at most MAX_GZ_BYTES), decompressed up to a bound (MAX_IDX_BYTES: 47 MB is
the largest real file), so a "gzip bomb" in the cache folder is refused, not inflated; each
verified file is written atomically under a unique temporary name (safe_files), so two
sessions downloading at once never rename each other's half-written `.part`.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from marginlab.data.dataset import (
    MNIST_CREDIT,
    Dataset,
    DatasetUnavailable,
    _root,
    digit_dataset,
)
from marginlab.safe_files import (
    Busy,
    TooLarge,
    gunzip_bounded,
    read_bounded,
    try_lock,
    write_atomically,
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
MAX_GZ_BYTES = 32 * 1024 * 1024  # train-images .gz is 9.9 MB
MAX_IDX_BYTES = 64 * 1024 * 1024  # train-images decompressed is 47,040,016 bytes


class IdxFormatError(ValueError):
    """Bytes that are not a complete IDX file (wrong magic, truncated, trailing data)."""


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
        return gunzip_bounded(blob, MAX_IDX_BYTES)
    except TooLarge as error:  # no MNIST file is this big: a damaged file or a "gzip bomb"
        raise IdxFormatError(f"{name}: {error}, more than any MNIST file") from error
    except (OSError, EOFError, zlib.error) as error:
        raise IdxFormatError(f"{name}: not a complete gzip file ({error})") from error


def read_idx_gz(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a gzip-compressed IDX file such as train-labels-idx1-ubyte.gz."""
    path = Path(path)
    return parse_idx(_gunzip(_read_gz(path), path.name), name=path.name)


def _read_gz(path: Path) -> bytes:
    try:
        return read_bounded(path, MAX_GZ_BYTES)
    except TooLarge as error:
        raise IdxFormatError(f"{error}, more than any MNIST file") from error


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
        blob = response.read(MAX_GZ_BYTES + 1)  # a mirror cannot make us hold more
    if len(blob) > MAX_GZ_BYTES:
        raise IdxFormatError(f"more than {MAX_GZ_BYTES:,} bytes, more than any MNIST file")
    return blob


def _store(blob: bytes, target: Path) -> None:
    """Write atomically under a unique temporary name: a crash never leaves a half-written
    file that looks cached, and two sessions downloading at once never mix their bytes."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, blob)
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
        return check_mnist_blob(_read_gz(path), path.name, md5s), ""
    except (OSError, IdxFormatError) as error:
        try:
            path.unlink()
        except OSError as unlink_error:
            return (
                None,
                f"corrupt cached {path.name} ({error}) could not be deleted: {unlink_error}",
            )
        return None, f"deleted corrupt cached {path.name} ({error})"


def _download_once(
    filename: str,
    folder: Path,
    mirrors: Sequence[str],
    md5s: Mapping[str, Sequence[str]],
    timeout: float,
) -> np.ndarray:
    """One download of `filename` at a time on this machine; a second asker is told it is
    busy (and falls back to the subset), or finds the file the first one just stored."""
    try:
        with try_lock(folder / ".download.lock", f"a download of {filename}"):
            cached, _ = _cached_array(folder / filename, md5s)
            if cached is not None:
                return cached
            return _download_file(filename, folder / filename, mirrors, md5s, timeout)
    except Busy as busy:
        raise MnistDownloadError(f"{busy}; try again in a minute") from None
    except OSError as error:  # the lock file cannot be made: the cache folder is not writable
        raise MnistDownloadError(
            f"cannot write the MNIST cache ({error}); set MARGINLAB_CACHE to a writable folder"
        ) from error


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
            cached = _download_once(filename, folder, mirrors, md5s, timeout)
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


def load_mnist(cache_dir: str | os.PathLike[str] | None = None, **fetch_options: Any) -> Dataset:
    """Full MNIST (60,000 + 10,000); raises MnistDownloadError, no fallback (see load_dataset).
    `fetch_options`: fetch_mnist_arrays' keywords (download, mirrors, md5s, timeout)."""
    arrays, notes = fetch_mnist_arrays(cache_dir, **fetch_options)
    _check_mnist_shapes(arrays)
    total = len(arrays["train_labels"]) + len(arrays["test_labels"])
    return digit_dataset(
        "mnist",
        arrays,
        source=f"full MNIST ({total:,} images, cached in {_root(cache_dir) / 'mnist'})",
        notice="; ".join(notes),
        credit=MNIST_CREDIT,
    )
