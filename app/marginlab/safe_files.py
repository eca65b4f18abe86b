"""Files on disk that other processes share: written atomically, read defensively, bounded.

Every cache of the app (phase maps, the MNIST download, claim results) and every run file is
written through :func:`write_atomically`: the bytes go to a temporary file with a UNIQUE name
in the target's own folder, are flushed and fsynced, and only then renamed over the target
with ``os.replace`` (atomic on POSIX and Windows within one file system). Two writers at once
each rename a complete file, so a reader sees the old file or one of the new ones, never a
mix; a crash mid-write leaves the old file. A fixed temporary name (``x.tmp``) is not enough:
two writers share it, one renames the other's half-written file, the other's rename fails.

Reading is defensive: :func:`read_json` returns None for anything that is not a JSON object
(missing, unreadable, too big, not JSON, ``null``, ``[]``), and the caller recomputes; no cache
content can crash a page. :func:`gunzip_bounded` decompresses at most a given number of bytes,
so a small "gzip bomb" in a cache folder cannot fill the server's memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

MAX_JSON_BYTES = 8 * 1024 * 1024  # a phase map is a few kB; nothing here needs more


class TooLarge(ValueError):
    """Content that would exceed the size it is allowed to have."""


class Busy(RuntimeError):
    """Another process (or session) holds the lock: the work is already being done."""


def write_atomically(
    path: str | os.PathLike[str],
    content: bytes | Callable[[IO[bytes]], None],
    *,
    mode: int | None = None,
) -> Path:
    """Write `content` (bytes, or a function that writes into a binary file) to `path`.

    The folder must exist (a typo in a save path is an error, not a new folder). `mode`
    defaults to the existing file's mode, else 0o644 (temporary files are created 0600).
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    temporary: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=directory, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as handle:
            temporary = Path(handle.name)
            if isinstance(content, bytes | bytearray | memoryview):
                handle.write(content)
            else:
                content(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise
    return path


def write_json_atomically(path: str | os.PathLike[str], value: Any) -> Path:
    """`value` as JSON (NaN refused: JSON has no NaN), written atomically."""
    return write_atomically(path, json.dumps(value, allow_nan=False).encode("utf-8"))


def read_bounded(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The file's bytes; TooLarge if it holds more than `max_bytes` (checked while reading)."""
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise TooLarge(f"{Path(path).name} is larger than {max_bytes:,} bytes")
    return data


def read_json(path: str | os.PathLike[str], max_bytes: int = MAX_JSON_BYTES) -> dict | None:
    """The JSON object in `path`, or None if there is none usable (the caller recomputes)."""
    try:
        value = json.loads(read_bounded(path, max_bytes))
    except (OSError, ValueError):  # missing, unreadable, too big, not UTF-8, not JSON
        return None
    return value if isinstance(value, dict) else None


def gunzip_bounded(blob: bytes, max_bytes: int) -> bytes:
    """Decompress a gzip stream (one or more members) to at most `max_bytes` bytes.

    Raises TooLarge past the bound (having allocated at most about `max_bytes`), and
    zlib.error / EOFError for a damaged or truncated stream, as gzip.decompress does.
    """
    # wbits 16 + MAX_WBITS: a gzip header and trailer (CRC and length are checked).
    return inflate_bounded(blob, max_bytes, wbits=16 + zlib.MAX_WBITS)


def inflate_bounded(blob: bytes, max_bytes: int, *, wbits: int = zlib.MAX_WBITS) -> bytes:
    """Decompress zlib streams (`wbits` as zlib's: the default is a zlib header, as joblib
    writes) one after another, to at most `max_bytes` bytes; errors as gunzip_bounded."""
    out = bytearray()
    rest = blob
    while rest:
        stream = zlib.decompressobj(wbits)
        chunk = rest
        while not stream.eof:
            piece = stream.decompress(chunk, max_bytes + 1 - len(out))
            out += piece
            if len(out) > max_bytes:
                raise TooLarge(f"decompresses to more than {max_bytes:,} bytes")
            chunk = stream.unconsumed_tail
            if not chunk and not piece:
                raise EOFError("compressed file ended before the end-of-stream marker")
        rest = stream.unused_data
    return bytes(out)


def keep_newest(folder: str | os.PathLike[str], pattern: str, keep: int) -> list[Path]:
    """Delete all but the `keep` most recently modified files matching `pattern` in `folder`
    (a cache folder stays bounded); returns what was deleted. Files another process deletes
    meanwhile are skipped."""

    def modified(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    files = sorted(Path(folder).glob(pattern), key=modified, reverse=True)
    deleted = []
    for path in files[max(0, keep) :]:
        try:
            path.unlink()
            deleted.append(path)
        except OSError:
            pass
    return deleted


@contextlib.contextmanager
def try_lock(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if missing) or raise Busy at once.

    Every process on the machine sees the same lock (fcntl.flock), so one download of a data
    set runs at a time, whichever session, server or worker started it; the lock goes with
    the process if it dies. Without fcntl (Windows) nothing is locked: the atomic writes still
    keep every cache whole.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"{what} is already running (another session started it)") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
