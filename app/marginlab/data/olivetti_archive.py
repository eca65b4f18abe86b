"""Reading scikit-learn's Olivetti archive (olivetti_py3.pkz) without trusting it.

scikit-learn reads it with `joblib.load`: a pickle, so a hostile file in a cache folder runs
any code it names, and a zlib bomb inflates without bound (a 1 MB file can hold gigabytes).
This reader takes only what scikit-learn writes (`joblib.dump(faces, path, compress=6)` in
sklearn/datasets/_olivetti_faces.py: one zlib stream holding a pickle of joblib's
NumpyArrayWrapper followed by the array's raw bytes) and refuses the rest, before anything large
is allocated:

- the file is at most MAX_ARCHIVE_BYTES and inflates to at most MAX_INFLATED_BYTES (the real
  one: 1.4 MB holding 1.6 MB of uint8 pixels; float64 pixels would be 13.1 MB);
- the pickle may name only joblib's wrapper, numpy.ndarray and numpy.dtype, none of them
  called with anything but a dtype's own arguments; no object dtype (that would unpickle the
  array's items), and the array must be 400 faces of 64 x 64 finite pixels.

Anything else raises ArchiveRefused (a ValueError) with one line saying why; face_sets then
fetches the set again (the app's own cache) or says the files are damaged (a user's folder).
The images come out as scikit-learn's fetcher gives them (min-max scaled float32, 400 x 64 x 64,
each image transposed from the .mat's column order), so nothing downstream changes.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from marginlab.safe_files import TooLarge, inflate_bounded, read_bounded

ARCHIVE_NAME = "olivetti_py3.pkz"  # sklearn's _pkl_filepath(data_home, "olivetti.pkz")
FACES, PIXELS = 400, 64 * 64
MAX_ARCHIVE_BYTES = 8 * 1024 * 1024
MAX_INFLATED_BYTES = FACES * PIXELS * 8 + 64 * 1024  # float64 pixels and the pickle's header
MAX_PICKLE_BYTES = 4096  # the pickle around the array: 224 bytes in the real file
_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")


class ArchiveRefused(ValueError):
    """The file is not an Olivetti archive as scikit-learn writes it."""


class _Stream(io.BytesIO):
    """The inflated bytes, of which the unpickler may read only MAX_PICKLE_BYTES: a pickle of
    many small objects (two bytes make an empty dict of 64) cannot grow much past its size."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.limit = MAX_PICKLE_BYTES

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or self.tell() + size > self.limit:
            raise ArchiveRefused(f"its pickle is longer than {MAX_PICKLE_BYTES:,} bytes")
        return super().read(size)

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(max(0, self.limit - self.tell()))
        if not line.endswith(b"\n"):
            raise ArchiveRefused(f"its pickle is longer than {MAX_PICKLE_BYTES:,} bytes")
        return line

    def read_array(self, count: int) -> bytes:
        """`count` bytes past the limit (the array's), then a few more for the pickle's end."""
        data = super().read(count)
        self.limit = self.tell() + 16
        return data


class _ArrayType:
    """Stands for numpy.ndarray in the pickle, where it is only compared: it makes nothing
    (a pickle calling ndarray could ask for any size)."""

    def __new__(cls, *args: object) -> _ArrayType:
        raise ArchiveRefused("it builds an array the way no face archive does")


class _ArrayWrapper:
    """Stands for joblib's NumpyArrayWrapper: only its fields are kept, nothing of it runs."""

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict):
            raise ArchiveRefused("the array's description is not a dictionary")
        self.state = state


class _FacesUnpickler(pickle._Unpickler):  # the pure-Python one: its opcodes can be hooked
    """Unpickles joblib's array format with a whitelist; the array's bytes are read here."""

    dispatch = pickle._Unpickler.dispatch.copy()

    def __init__(self, stream: _Stream) -> None:
        super().__init__(stream)
        self.stream = stream

    def find_class(self, module: str, name: str) -> object:
        if (module, name) == _WRAPPER:
            return _ArrayWrapper
        if (module, name) == ("numpy", "ndarray"):
            return _ArrayType
        if (module, name) == ("numpy", "dtype"):
            return _dtype
        raise ArchiveRefused(f"it names {module}.{name}, which a face archive never does")

    def persistent_load(self, pid: object) -> object:
        raise ArchiveRefused("it refers to outside objects")

    def load_build(self) -> None:
        pickle._Unpickler.load_build(self)
        if isinstance(self.stack[-1], _ArrayWrapper):
            # joblib ends the pickle frame here and writes the array's bytes right after it
            self.stack[-1] = _read_array(self.stream, self.stack[-1].state)

    dispatch[pickle.BUILD[0]] = load_build


def _dtype(*args: object) -> np.dtype:
    """numpy.dtype as a pickle calls it (`dtype('u1', False, True)`), numbers only."""
    if not args or not isinstance(args[0], str) or len(args) > 3:
        raise ArchiveRefused("the pixels' type is not a plain dtype")
    dtype = np.dtype(args[0])
    if dtype.kind not in "uif" or dtype.hasobject:
        raise ArchiveRefused(f"the pixels' type {dtype} is not a number")
    return dtype


def _read_array(stream: _Stream, state: dict) -> np.ndarray:
    dtype, shape = state.get("dtype"), state.get("shape")
    if state.get("subclass") is not _ArrayType or not isinstance(dtype, np.dtype):
        raise ArchiveRefused("it holds something other than a plain array")
    if dtype.kind not in "uif" or dtype.hasobject:
        raise ArchiveRefused(f"the pixels' type {dtype} is not a number")
    if shape != (FACES, PIXELS):
        raise ArchiveRefused(f"its array has shape {shape}, not {FACES} faces of {PIXELS} pixels")
    if state.get("numpy_array_alignment_bytes") is not None:
        padding = stream.read(1)
        stream.read(padding[0] if padding else 0)
    count = math.prod(shape) * dtype.itemsize
    data = stream.read_array(count)
    if len(data) != count:
        raise ArchiveRefused("the file ends inside the array")
    order = "F" if state.get("order") == "F" else "C"
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).astype(np.float32)


def read_olivetti_archive(path: str | Path) -> np.ndarray:
    """The 400 x 4096 pixel array in an Olivetti archive (float32); ArchiveRefused if the file
    is not one as scikit-learn writes it (OSError if it cannot be read)."""
    try:
        inflated = inflate_bounded(read_bounded(path, MAX_ARCHIVE_BYTES), MAX_INFLATED_BYTES)
    except TooLarge as error:
        raise ArchiveRefused(f"it is too large for 400 faces: it {error}") from None
    except (EOFError, ValueError) as error:  # zlib.error is neither: caught below
        raise ArchiveRefused(f"it is not a complete zlib stream ({error})") from None
    except Exception as error:
        if type(error).__module__ == "zlib":
            raise ArchiveRefused(f"it is not a zlib stream as joblib writes ({error})") from None
        raise
    try:
        faces = _FacesUnpickler(_Stream(inflated)).load()
    except ArchiveRefused:
        raise
    except Exception as error:  # a damaged pickle: any unpickling error
        raise ArchiveRefused(f"its pickle is damaged ({type(error).__name__}: {error})") from None
    if not isinstance(faces, np.ndarray) or faces.shape != (FACES, PIXELS):
        raise ArchiveRefused("it does not hold the 400 faces' array")
    if not np.isfinite(faces).all() or float(faces.max()) <= float(faces.min()):
        raise ArchiveRefused("its pixels are not finite, or all the same")
    return faces


def olivetti_bunch(path: str | Path) -> SimpleNamespace:
    """`images` and `target` as scikit-learn's fetch_olivetti_faces(shuffle=False) gives them."""
    faces = read_olivetti_archive(path)
    faces = faces - faces.min()  # sklearn scales to [0, 1] (the set's darkest pixel is 0)
    faces /= faces.max()
    images = faces.reshape((FACES, 64, 64)).transpose(0, 2, 1)
    return SimpleNamespace(images=images, target=np.arange(FACES) // 10)


def fetch_olivetti(
    data_home: str, download_if_missing: bool, **_options: object
) -> SimpleNamespace:
    """The archive in `data_home`, read as above; scikit-learn's fetcher downloads it first
    when it is missing (from a .mat file, which it loads with scipy, not a pickle)."""
    path = Path(data_home) / ARCHIVE_NAME
    if not path.exists():
        from sklearn.datasets import fetch_olivetti_faces  # heavy import, only for a download

        fetch_olivetti_faces(data_home=data_home, download_if_missing=download_if_missing)
    return olivetti_bunch(path)
