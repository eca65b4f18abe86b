"""Olivetti's archive in a cache folder is untrusted (issue 16): data.olivetti_archive reads
only what scikit-learn writes, bounded, and never unpickles it.

Crafted files are real ones: joblib.dump writes them as scikit-learn does (compress=6), or
zlib compresses them; the bomb really inflates to 1 GiB. Peak memory is read in a fresh
process (ru_maxrss), against the same process's peak before the read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import joblib
import numpy as np
import pytest

from marginlab.data.dataset import DatasetUnavailable
from marginlab.data.face_sets import load_olivetti_people
from marginlab.data.olivetti_archive import (
    ARCHIVE_NAME,
    MAX_INFLATED_BYTES,
    ArchiveRefused,
    olivetti_bunch,
    read_olivetti_archive,
)

REPO = Path(__file__).resolve().parents[1]
BOMB_BYTES = 1 << 30


class _Planted:
    """Unpickling this makes a folder: proof that a pickle ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _bomb(path: Path) -> Path:
    """A zlib stream of BOMB_BYTES zeros (about 1 MB on disk)."""
    stream, zeros = zlib.compressobj(9), bytes(16 << 20)
    with open(path, "wb") as handle:
        for _ in range(BOMB_BYTES // len(zeros)):
            handle.write(stream.compress(zeros))
        handle.write(stream.flush())
    return path


@pytest.fixture
def user_home(tmp_path, monkeypatch) -> Path:
    """A scikit-learn data folder of the user's ($SCIKIT_LEARN_DATA), empty app cache."""
    home = tmp_path / "sklearn"
    home.mkdir()
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(home))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MARGINLAB_CACHE", str(tmp_path / "cache"))
    return home


def test_the_real_archive_reads_as_scikit_learns_fetcher_gives_it(shared_data_dir):
    from sklearn.datasets import fetch_olivetti_faces

    home = shared_data_dir / "scikit_learn_data"
    theirs = fetch_olivetti_faces(data_home=str(home), download_if_missing=False, shuffle=False)
    ours = olivetti_bunch(home / ARCHIVE_NAME)
    assert ours.images.dtype == np.float32 and ours.images.shape == (400, 64, 64)
    assert np.array_equal(ours.images, theirs.images)
    assert np.array_equal(ours.target, theirs.target)


def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(user_home, tmp_path):
    marker = tmp_path / "ran"
    joblib.dump([_Planted(marker), np.zeros((400, 4096), np.uint8)], user_home / ARCHIVE_NAME, 6)
    with pytest.raises(ArchiveRefused, match="posix.mkdir"):
        read_olivetti_archive(user_home / ARCHIVE_NAME)
    with pytest.raises(DatasetUnavailable, match="damaged.*posix.mkdir"):
        load_olivetti_people(download=False)
    assert not marker.exists()
    joblib.load(user_home / ARCHIVE_NAME)  # what scikit-learn's own reader does with it
    assert marker.exists(), "the planted pickle should run under joblib.load"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (np.zeros((10, 10)), "shape"),
        (np.array([None] * (400 * 4096), dtype=object).reshape(400, 4096), "not a number"),
        ({"faces": 1}, "does not hold"),
        ([{} for _ in range(5000)], "longer than 4,096"),
        (np.full((400, 4096), np.nan), "not finite"),
    ],
    ids=["shape", "object-dtype", "no-array", "many-objects", "nan"],
)
def test_foreign_archives_are_refused_with_one_line(tmp_path, content, why):
    path = tmp_path / ARCHIVE_NAME
    joblib.dump(content, path, compress=6)
    with pytest.raises(ArchiveRefused, match=why) as refused:
        read_olivetti_archive(path)
    assert "\n" not in str(refused.value)


def test_truncated_and_other_compressions_are_refused(shared_data_dir, tmp_path):
    good = (shared_data_dir / "scikit_learn_data" / ARCHIVE_NAME).read_bytes()
    (tmp_path / "cut.pkz").write_bytes(good[: len(good) // 2])
    with pytest.raises(ArchiveRefused, match="complete"):
        read_olivetti_archive(tmp_path / "cut.pkz")
    joblib.dump(np.zeros((400, 4096), np.uint8), tmp_path / "gz.pkz", compress=("gzip", 3))
    with pytest.raises(ArchiveRefused, match="zlib"):
        read_olivetti_archive(tmp_path / "gz.pkz")


def test_a_bomb_is_refused_with_bounded_memory(user_home, tmp_path):
    """1 GiB of zeros in a 1 MB file, in the user's scikit-learn folder: refused after
    inflating at most MAX_INFLATED_BYTES; the page says the files are damaged."""
    _bomb(user_home / ARCHIVE_NAME)
    assert (user_home / ARCHIVE_NAME).stat().st_size < 2 << 20
    with pytest.raises(DatasetUnavailable, match="damaged.*too large"):
        load_olivetti_people(download=False)
    probe = (
        "import json, resource, sys\n"
        "from marginlab.data.olivetti_archive import ArchiveRefused, read_olivetti_archive\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    read_olivetti_archive(sys.argv[1])\n"
        "    refused = ''\n"
        "except ArchiveRefused as error:\n"
        "    refused = str(error)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'grew_kb': after - before, 'refused': refused}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(user_home / ARCHIVE_NAME)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "app")},
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout)
    assert "too large" in result["refused"]
    # the bound plus the file and a copy of the inflated bytes; far below the 1 GiB it holds
    assert result["grew_kb"] * 1024 < 3 * MAX_INFLATED_BYTES + (8 << 20), result
