"""Disk caches shared by sessions and processes (issue 16): written atomically, read
defensively, bounded. Concurrent writers are real processes; memory is measured from /proc."""

from __future__ import annotations

import contextlib
import gzip
import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import marginlab
from marginlab.data import mnist_files
from marginlab.data.datasets import DatasetUnavailable, load_dataset, load_olivetti_people
from marginlab.experiments import phase_map as phase_map_module
from marginlab.experiments.phase_map import phase_map

pytestmark = pytest.mark.usefixtures("one_thread")
APP = Path(marginlab.__file__).resolve().parents[1]
MB = 1024 * 1024
TINY = {"steps": 1, "warmup": 0, "s_values": (16.0,), "m_values": (0.2,), "seeds": (0,)}


# ----- the phase-map cache ---------------------------------------------------------------
@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> tuple[Path, str]:
    """A real one-cell sweep; returns its cache file and what the sweep wrote there."""
    folder = tmp_path_factory.mktemp("phase")
    phase_map("arcface", 2, cache_dir=folder, **TINY)
    (path,) = folder.glob("*.json")
    return path, path.read_text()


def _damaged(good: dict) -> dict[str, bytes]:
    no_runs = {k: v for k, v in good.items() if k != "runs"}
    return {
        "null": b"null",
        "list": b"[]",
        "empty object": b"{}",
        "missing key": json.dumps(no_runs).encode(),
        "runs not a grid": json.dumps({**good, "runs": [[1, 2, 3]]}).encode(),
        "cell is null": json.dumps({**good, "runs": [[{"0": None}]]}).encode(),
        "cell lacks numbers": json.dumps({**good, "runs": [[{"0": {"accuracy": "x"}}]]}).encode(),
        "truncated": json.dumps(good).encode()[:40],
        "not utf-8": b"\xff\xfe\x00",
    }


def test_a_wrong_shaped_phase_map_cache_is_recomputed_with_a_note(swept):
    swept, text = swept
    good = json.loads(text)
    for name, content in _damaged(good).items():
        swept.write_bytes(content)
        shown = phase_map("arcface", 2, cache_dir=swept.parent, cached_only=True, **TINY)
        assert shown["cells"][0][0]["runs"] == 0, name  # nothing trusted from the bad file
        assert shown.get("notes") and "damaged" in shown["notes"][0], name
    recomputed = phase_map("arcface", 2, cache_dir=swept.parent, **TINY)
    assert recomputed["cells"][0][0]["runs"] == 1
    assert json.loads(swept.read_text())["runs"] == good["runs"]  # the same seeded run again


def _hammer_phase_cache(path: str, writer: int, rounds: int, errors) -> None:
    base = json.loads(Path(path).read_text())
    try:
        for k in range(rounds):
            result = {**base, "writer": writer, "round": k, "padding": "x" * (2000 + 37 * k)}
            phase_map_module._save(Path(path), result)
    except Exception as error:  # noqa: BLE001 - the test reports every failure of a writer
        errors.put(f"writer {writer}: {type(error).__name__}: {error}")


def _is_json(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except ValueError:
        return False
    return True


def concurrent_writers(target, path: Path, args: tuple, check, writers: int = 4) -> list[str]:
    """`writers` processes run target(path, i, *args, errors) while a thread reads the file
    and `check(path)` says whether what it read is whole; returns every failure."""
    context = multiprocessing.get_context("spawn")
    errors = context.Queue()
    processes = [
        context.Process(target=target, args=(str(path), i, *args, errors)) for i in range(writers)
    ]
    stop, bad = threading.Event(), []

    def read() -> None:
        while not stop.is_set():
            try:
                if not check(path):
                    bad.append("reader saw a partial file")
            except FileNotFoundError:
                pass  # before the first rename

    reader = threading.Thread(target=read)
    reader.start()
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    stop.set()
    reader.join()
    failures = sorted(set(bad))
    while not errors.empty():
        failures.append(errors.get())
    return failures


def test_concurrent_writers_of_the_phase_map_cache_never_collide(swept, tmp_path):
    path = tmp_path / swept[0].name
    path.write_text(swept[1])
    assert concurrent_writers(_hammer_phase_cache, path, (150,), _is_json) == []
    assert json.loads(path.read_text())["round"] == 149
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left


def test_the_phase_map_cache_folder_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(phase_map_module, "MAX_CACHE_FILES", 3)
    for index in range(5):
        (tmp_path / f"old-{index}.json").write_text("{}")
        os.utime(tmp_path / f"old-{index}.json", (index, index))
    phase_map("arcface", 2, cache_dir=tmp_path, **TINY)
    assert len(list(tmp_path.glob("*.json"))) == 3
    assert not (tmp_path / "old-0.json").exists() and (tmp_path / "old-4.json").exists()


# ----- the MNIST download cache ----------------------------------------------------------
def _hammer_mnist_store(path: str, writer: int, rounds: int, blob: bytes, errors) -> None:
    try:
        for _ in range(rounds):
            mnist_files._store(blob, Path(path))
    except Exception as error:  # noqa: BLE001
        errors.put(f"writer {writer}: {type(error).__name__}: {error}")


def _same_bytes(blob: bytes):
    return lambda path: path.read_bytes() == blob


def test_concurrent_downloads_of_an_mnist_file_never_mix(tmp_path, shared_data_dir):
    blob = (shared_data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    path = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert concurrent_writers(_hammer_mnist_store, path, (200, blob), _same_bytes(blob)) == []
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert mnist_files.read_idx_gz(path).shape == (10_000,)


BOMB_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from marginlab.data.datasets import load_dataset
    load_dataset("mnist-toy")
    def status(name):
        for line in open("/proc/self/status"):
            if line.startswith(name):
                return int(line.split()[1]) * 1024
    open("/proc/self/clear_refs", "w").write("5")
    baseline = status("VmRSS")
    dataset = load_dataset("mnist", cache_dir=sys.argv[1], download=False)
    print(json.dumps({"name": dataset.name, "notice": dataset.notice,
                      "extra": status("VmHWM") - baseline}))
    """
)


def test_a_gzip_bomb_in_the_mnist_cache_is_refused_by_a_bounded_decompression(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    bomb = folder / "train-images-idx3-ubyte.gz"
    with gzip.GzipFile(bomb, "wb", compresslevel=1) as handle:
        for _ in range(256):
            handle.write(bytes(4 * MB))  # 1 GiB of zeros, about 1 MB on disk
    assert bomb.stat().st_size < 8 * MB
    done = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(APP), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["name"] == "mnist-toy" and "train-images" in result["notice"]
    assert result["extra"] < 500 * MB, f"peak RSS {result['extra'] / MB:.0f} MB above baseline"
    assert not bomb.exists()  # a corrupt cache file is deleted, never used


def test_the_mnist_fallback_notice_names_the_reason(tmp_path):
    dataset = load_dataset("mnist", cache_dir=tmp_path, download=False)
    assert dataset.name == "mnist-toy" and "not cached" in dataset.notice


# ----- faces: scikit-learn's folders first, atomic downloads, damaged copies ----------------
@pytest.fixture
def isolated_home(tmp_path, monkeypatch) -> Path:
    """No SCIKIT_LEARN_DATA, an empty home and an empty app cache."""
    monkeypatch.delenv("SCIKIT_LEARN_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MARGINLAB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "home").mkdir()
    return tmp_path


def test_faces_honour_scikit_learn_data(isolated_home, shared_data_dir, monkeypatch):
    with pytest.raises(DatasetUnavailable):
        load_olivetti_people(download=False)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(shared_data_dir / "scikit_learn_data"))
    people = load_olivetti_people(download=False)
    assert people.images.shape == (400, 64, 64)


def test_faces_honour_the_default_scikit_learn_folder(isolated_home, shared_data_dir):
    (isolated_home / "home" / "scikit_learn_data").symlink_to(shared_data_dir / "scikit_learn_data")
    assert load_olivetti_people(download=False).images.shape == (400, 64, 64)


def test_a_damaged_olivetti_copy_in_the_app_cache_is_a_clear_error(isolated_home, shared_data_dir):
    home = isolated_home / "cache" / "scikit_learn_data"
    home.mkdir(parents=True)
    good = (shared_data_dir / "scikit_learn_data" / "olivetti_py3.pkz").read_bytes()
    (home / "olivetti_py3.pkz").write_bytes(good[: len(good) // 3])
    with pytest.raises(DatasetUnavailable, match="damaged"):
        load_olivetti_people(download=False)


def _slow_copy_fetch(source: str):
    """What scikit-learn's fetcher does to its data home: write olivetti_py3.pkz in place,
    here from the real copy, in small pieces (a long window for a reader to see it half done)."""

    def fetch(private: str) -> None:
        data = Path(source).read_bytes()
        with open(Path(private) / "olivetti_py3.pkz", "wb") as handle:
            for start in range(0, len(data), 64 * 1024):
                handle.write(data[start : start + 64 * 1024])
                handle.flush()

    return fetch


def _hammer_faces(home: str, writer: int, rounds: int, source: str, errors) -> None:
    from marginlab.data import face_sets
    from marginlab.safe_files import Busy

    try:
        for _ in range(rounds):
            # Another writer holding the download lock is the expected answer to a second
            # download; the test is about what a reader can see meanwhile.
            with contextlib.suppress(Busy):
                face_sets._fetch_atomically(Path(home), "olivetti", _slow_copy_fetch(source))
    except Exception as error:  # noqa: BLE001
        errors.put(f"writer {writer}: {type(error).__name__}: {error}")


def test_concurrent_face_downloads_never_expose_a_partial_file(tmp_path, shared_data_dir):
    source = shared_data_dir / "scikit_learn_data" / "olivetti_py3.pkz"
    home = tmp_path / "scikit_learn_data"
    check = _same_bytes(source.read_bytes())
    target = home / "olivetti_py3.pkz"
    assert concurrent_writers(_hammer_faces, home, (15, str(source)), lambda _: check(target)) == []
    left = sorted(p.name for p in home.iterdir() if not p.name.endswith(".lock"))
    assert left == ["olivetti_py3.pkz"]
    assert load_olivetti_people(tmp_path, download=False).images.shape == (400, 64, 64)
