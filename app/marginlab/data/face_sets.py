"""Face sets through scikit-learn's own fetchers: Olivetti (400 faces of 40 people) and LFW.

Where the files are looked for, in order: $SCIKIT_LEARN_DATA, scikit-learn's default
~/scikit_learn_data, then the app's cache (<cache>/scikit_learn_data); the first that holds the
set is used, so faces a user already downloaded for scikit-learn are found. A download goes to
$SCIKIT_LEARN_DATA if set, else to the app's cache. An explicit `cache_dir` means only
<cache_dir>/scikit_learn_data.

scikit-learn writes Olivetti's .pkz in place (and deletes the .mat it came from), so two
sessions downloading at once could read each other's half-written file. Downloads therefore run
in a private temporary folder beside the target and the result is renamed into place
(`_fetch_atomically`); a damaged copy in the app's own cache is deleted and fetched again.
Olivetti's archive is a pickle: it is read by olivetti_archive, bounded and never unpickled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from marginlab.data.dataset import (
    LFW_CREDIT,
    OLIVETTI_CREDIT,
    Dataset,
    DatasetUnavailable,
    People,
    _root,
    cache_root,
)
from marginlab.data.olivetti_archive import ARCHIVE_NAME, fetch_olivetti
from marginlab.safe_files import Busy, try_lock

OLIVETTI_DOWNLOAD_MB = 1.4
LFW_DOWNLOAD_MB = 200  # lfw-funneled.tgz; scikit-learn logs "Downloading LFW data (~200MB)"


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


# What scikit-learn leaves in its data home once a set is there (files or folders).
_MARKERS = {"olivetti": ARCHIVE_NAME, "lfw": "lfw_home"}


def data_homes(cache_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The folders searched for scikit-learn's face files, in order (see the module doc)."""
    if cache_dir is not None:
        return [Path(cache_dir) / "scikit_learn_data"]
    homes = []
    configured = os.environ.get("SCIKIT_LEARN_DATA")
    if configured:
        homes.append(Path(configured).expanduser())
    homes += [Path.home() / "scikit_learn_data", cache_root() / "scikit_learn_data"]
    return list(dict.fromkeys(homes))


def _home_of(name: str, cache_dir: str | os.PathLike[str] | None) -> tuple[Path, bool]:
    """(the folder that holds the set, True), or (where to download it, False)."""
    homes = data_homes(cache_dir)
    for home in homes:
        if (home / _MARKERS[name]).exists():
            return home, True
    if cache_dir is None and os.environ.get("SCIKIT_LEARN_DATA"):
        return homes[0], False
    return homes[-1], False


def _fetch_atomically(home: Path, name: str, fetch: Callable[[str], Any]) -> Any:
    """`fetch(data_home)` into a private folder beside `home`, then its files renamed into
    `home`: a reader never sees a half-written set, two writers never mix theirs. One download
    per set at a time on this machine (safe_files.try_lock): a second asker gets Busy."""
    home.mkdir(parents=True, exist_ok=True)
    with try_lock(home / f".{name}-download.lock", f"a download of the {name} faces"):
        private = Path(tempfile.mkdtemp(dir=home, prefix=f".{name}-download-"))
        try:
            result = fetch(str(private))
            made = private / _MARKERS[name]
            if made.is_dir():  # a folder cannot be replaced atomically: the first one in stays
                with contextlib.suppress(OSError):  # another session finished first: keep it
                    made.rename(home / _MARKERS[name])
            elif made.exists():
                os.replace(made, home / _MARKERS[name])
            return result
        finally:
            shutil.rmtree(private, ignore_errors=True)


def _fetch_faces(
    name: str,
    cache_dir: str | os.PathLike[str] | None,
    download: bool,
    fetch: Callable[..., Any],
    **options: Any,
) -> Any:
    """scikit-learn's fetcher for `name`, from the first folder that has it, else downloaded
    atomically; a damaged copy in the app's cache is deleted and fetched again."""
    home, found = _home_of(name, cache_dir)
    if found:
        try:
            return fetch(data_home=str(home), download_if_missing=False, **options)
        except OSError:
            raise
        except Exception as error:  # a truncated or foreign pickle: EOFError, ValueError, ...
            ours = home == _root(cache_dir) / "scikit_learn_data"
            if not (ours and download):
                raise DatasetUnavailable(
                    f"the {name} files in {home} are damaged ({type(error).__name__}: {error}); "
                    "delete them to download them again"
                ) from error
            marker = home / _MARKERS[name]
            shutil.rmtree(marker) if marker.is_dir() else marker.unlink(missing_ok=True)
    if not download:
        raise OSError("Data not found and `download_if_missing` is False")
    try:
        return _fetch_atomically(
            home,
            name,
            lambda private: fetch(data_home=private, download_if_missing=True, **options),
        )
    except Busy as busy:
        raise DatasetUnavailable(f"{busy}; try again in a minute") from None


def load_olivetti_people(
    cache_dir: str | os.PathLike[str] | None = None, *, download: bool = True
) -> People:
    """All 400 Olivetti faces (40 people x 10, 64x64 uint8) in scikit-learn's order; its
    archive is read without unpickling it (olivetti_archive: a hostile file runs nothing)."""
    try:
        bunch = _fetch_faces("olivetti", cache_dir, download, fetch_olivetti)
    except OSError as error:  # missing with downloads off, or any network error (URLError)
        home = _home_of("olivetti", cache_dir)[0]
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

    try:
        bunch = _fetch_faces(
            "lfw",
            cache_dir,
            download,
            fetch_lfw_people,
            min_faces_per_person=min_faces_per_person,
            resize=resize,
            color=False,
        )
    except OSError as error:
        home = _home_of("lfw", cache_dir)[0]
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
