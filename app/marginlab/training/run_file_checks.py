"""What a run file must be before anything in it is used: the checks of run_files.py.

A run file may come from a stranger (the app's upload button), so it is checked in two passes,
each before anything grows with what the file says:

1. The archive, before `torch.load` (which would inflate a compressed record before its size is
   known: a 4 MB file can expand to 4 GiB). `torch.save` writes a zip whose records are all
   STORED, never compressed, so a compressed record is refused; the records' sizes must add up
   to at most the file's own size (overlapping records would not); the pickle that describes
   the tensors is bounded in bytes and in opcodes (each opcode builds at most one small object,
   so the count bounds the memory the safe unpickler can use).
2. The loaded payload, before a Run is built: every tensor lies inside its storage (no
   stride-0 view of a tiny storage posing as a huge tensor) and is finite, the config passes
   RunConfig's validation (which bounds dim, k, the probe and the history), and every snapshot
   of the history has the fields, shapes and finite numbers a live run's snapshots have.
   Building the Run then allocates only what a bounded config allows, and load_state_dict
   checks the weights' shapes against it.

Each failure raises RunFileError with one line saying what is wrong.
"""

from __future__ import annotations

import math
import pickletools
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from marginlab.training.config import RunConfig, device_available
from marginlab.training.snapshots import HISTOGRAM_BINS

# Run files the CLI reads (the app passes its own, smaller upload limit). A six-run comparison
# of 512-D runs at the default 64 MB history budget each stays below this.
MAX_RUN_FILE_BYTES = 512 * 1024 * 1024
# A 400-snapshot run file has ~2,100 records and a 0.28 MB pickle of ~89,000 opcodes; six runs
# at the largest history (RunConfig allows 1,000 snapshots) stay within these bounds.
MAX_RECORDS = 100_000
MAX_PICKLE_BYTES = 64 * 1024 * 1024
MAX_PICKLE_OPCODES = 2_000_000
MAX_NESTING = 16
_PRIMITIVES = (str, int, float, bool, type(None))
_ACCELERATORS = ("cuda", "mps")  # saved device names that another machine may lack


class RunFileError(Exception):
    """A run file that cannot be used: missing, corrupt, truncated, foreign or incompatible."""


# ----- pass 1: the archive -----------------------------------------------------------------
def check_archive(path: Path, max_bytes: int = MAX_RUN_FILE_BYTES) -> None:
    """Refuse a file whose loading could use more memory than the file is big."""
    size = path.stat().st_size
    if size > max_bytes:
        raise RunFileError(
            f"{path}: the file is {size / 1e6:.1f} MB; run files are at most "
            f"{max_bytes / 1e6:.0f} MB here"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
            _check_records(path, records, size)
            pickle = [r for r in records if r.filename.endswith("/data.pkl")]
            if len(pickle) != 1:
                raise RunFileError(f"{path}: not a readable marginlab run file (no tensor index)")
            if pickle[0].file_size > MAX_PICKLE_BYTES:
                raise RunFileError(f"{path}: its tensor index is too large to be a run file")
            _count_opcodes(path, archive.read(pickle[0]))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as error:
        raise RunFileError(
            f"{path}: not a readable marginlab run file (corrupt, truncated or foreign: "
            f"{one_line(error)})"
        ) from None


def _check_records(path: Path, records: Sequence[zipfile.ZipInfo], size: int) -> None:
    if len(records) > MAX_RECORDS:
        raise RunFileError(f"{path}: {len(records):,} records, more than any run file has")
    for record in records:
        if record.compress_type != zipfile.ZIP_STORED:
            raise RunFileError(
                f"{path}: record {record.filename!r} is compressed; torch.save never compresses, "
                "and a compressed record could expand to any size"
            )
    if sum(record.file_size for record in records) > size:
        raise RunFileError(f"{path}: its records claim more bytes than the file holds")


def _count_opcodes(path: Path, pickle: bytes) -> None:
    try:
        for count, _ in enumerate(pickletools.genops(pickle), start=1):
            if count > MAX_PICKLE_OPCODES:
                raise RunFileError(f"{path}: its tensor index is too large to be a run file")
    except RunFileError:
        raise
    except Exception as error:  # pickletools raises ValueError and friends on damaged data
        raise RunFileError(f"{path}: a damaged tensor index ({one_line(error)})") from None


# ----- pass 2: the payload -----------------------------------------------------------------
def check_tensors(payload: Any) -> None:
    """Every tensor inside its own storage, dense, on the CPU, finite; bounded nesting."""
    for where, tensor in _tensors(payload, "file", 0):
        if tensor.layout != torch.strided or tensor.is_quantized:
            raise RunFileError(f"{where}: a {tensor.layout} tensor; run files hold dense ones")
        if any(stride < 0 for stride in tensor.stride()):
            raise RunFileError(f"{where}: a tensor with a negative stride")
        if tensor.numel():
            last = tensor.storage_offset() + sum(
                (n - 1) * stride for n, stride in zip(tensor.shape, tensor.stride(), strict=True)
            )
            reach = (last + 1) * tensor.element_size()
            if tensor.numel() * tensor.element_size() > reach or reach > (
                tensor.untyped_storage().nbytes()
            ):
                raise RunFileError(f"{where}: a tensor larger than the data stored for it")
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(
            torch.isfinite(tensor).all()
        ):
            raise RunFileError(f"{where}: a tensor holds NaN or infinite values")


def _tensors(value: Any, where: str, depth: int) -> Iterator[tuple[str, torch.Tensor]]:
    if depth > MAX_NESTING:
        raise RunFileError(f"{where}: nested deeper than a run file is")
    if isinstance(value, torch.Tensor):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise RunFileError(f"{where}: a key of type {type(key).__name__}")
            yield from _tensors(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _tensors(item, f"{where}[{index}]", depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise RunFileError(f"{where}: a number that is NaN or infinite")
    elif not isinstance(value, _PRIMITIVES + (torch.Size, torch.dtype)):
        raise RunFileError(f"{where}: an unexpected {type(value).__name__}")


def check_config(values: Any, device: str | None) -> RunConfig:
    """The saved RunConfig (on `device` if given), validated and bounded by RunConfig itself.

    Without a device, a run saved on a device this machine lacks (a GPU run opened on a
    laptop) comes back on "auto": the tensors were read onto the CPU (map_location), so only
    the saved device name stands in the way."""
    if not isinstance(values, Mapping) or not all(isinstance(k, str) for k in values):
        raise RunFileError("its config is not a table of settings")
    values = dict(values)
    if device is not None:
        values["device"] = device
    elif values.get("device") in _ACCELERATORS and not device_available(values["device"]):
        values["device"] = "auto"
    try:
        return RunConfig.from_dict(values)
    except (ValueError, TypeError) as error:
        raise RunFileError(f"its config cannot be used: {one_line(error)}") from None


def check_fingerprint(saved: Any) -> dict[str, Any]:
    """The saved description of the training data (compared with the data here later)."""
    if not isinstance(saved, Mapping):
        raise RunFileError("it does not say which data it was trained on")
    for name in ("train_size", "test_size", "num_classes"):
        _count(saved.get(name), f"data.{name}", low=1)
    return dict(saved)


def check_state(state: Any, config: RunConfig) -> None:
    """The run's counters: whole numbers ≥ 0 and finite times, as a live run has them."""
    if not isinstance(state, Mapping):
        raise RunFileError("its run state is not a table")
    for name in ("steps", "window_seen"):
        if name in state:
            _count(state[name], name, low=0)
    for name in ("elapsed", "step_seconds"):
        if name in state:
            _number(state[name], name, low=0.0)
    for name in ("last_loss", "last_train_acc"):
        if name in state:
            _number(state[name], name)
    sampler = state.get("sampler")
    if sampler is not None:
        check_sampler(sampler, config.batch_size)


def check_sampler(sampler: Any, batch_size: int) -> None:
    """A batch sampler's state: its order a permutation of the training images (or empty)."""
    if not isinstance(sampler, Mapping):
        raise RunFileError("its sampler state is not a table")
    items = _count(sampler.get("num_items"), "sampler.num_items", low=2)
    order = sampler.get("order")
    if not isinstance(order, torch.Tensor) or order.dtype != torch.int64 or order.dim() != 1:
        raise RunFileError("its sampler order is not a list of image indices")
    if len(order) not in (0, items) or (
        len(order) and not torch.equal(order.sort().values, torch.arange(items))
    ):
        raise RunFileError("its sampler order is not a permutation of the training images")
    _count(sampler.get("position"), "sampler.position", low=0, high=len(order))
    _count(sampler.get("epoch"), "sampler.epoch", low=0)
    if _count(sampler.get("batch_size"), "sampler.batch_size", low=2) != batch_size:
        raise RunFileError("its sampler's batch size is not the config's")


def check_history(history: Any, config: RunConfig, data: Mapping[str, Any], steps: int) -> None:
    """The snapshots, each shaped as this config's run on this data would make them."""
    if not isinstance(history, list):
        raise RunFileError("its snapshot history is not a list")
    if len(history) > config.history_size:
        raise RunFileError(
            f"{len(history):,} snapshots in the history; its config keeps {config.history_size:,}"
        )
    probe = min(config.probe_size, int(data["test_size"]))
    classes = int(data["num_classes"])
    previous = 0
    for index, snap in enumerate(history):
        where = f"snapshot {index + 1}"
        if not isinstance(snap, Mapping):
            raise RunFileError(f"{where} is not a table")
        step = _count(snap.get("step"), f"{where}: step", low=previous, high=steps)
        previous = step
        for name in ("wall_time", "loss"):
            _number(snap.get(name), f"{where}: {name}")
        for name in ("train_acc", "test_acc"):
            _number(snap.get(name), f"{where}: {name}", low=0.0, high=1.0)
        for name in ("skipped_steps", "nonfinite_features"):
            _count(snap.get(name, 0), f"{where}: {name}", low=0)
        _shape(snap.get("features"), (probe, config.dim), f"{where}: features")
        _class_array(snap.get("weights"), classes, config.dim, f"{where}: weights")
        if snap.get("centers") is not None:
            _shape(snap.get("centers"), (classes, config.dim), f"{where}: centers")
        for name in ("theta_target_hist", "theta_other_hist"):
            hist = _shape(snap.get(name), (HISTOGRAM_BINS,), f"{where}: {name}")
            if hist.is_floating_point() or bool((hist < 0).any()):
                raise RunFileError(f"{where}: {name} is not a histogram of counts")
        if "margin_per_class" in snap:  # older files; Snapshot.from_state drops it
            _shape(snap["margin_per_class"], (classes,), f"{where}: margin_per_class")
        for name in ("stats", "params"):
            table = snap.get(name)
            if not isinstance(table, Mapping) or not all(isinstance(k, str) for k in table):
                raise RunFileError(f"{where}: {name} is not a table")
        state = snap.get("state", {})  # a head's running statistics (older files: none)
        if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
            raise RunFileError(f"{where}: state is not a table")
        for name, value in state.items():
            _number(value, f"{where}: state {name}")


def _shape(value: Any, shape: tuple[int, ...], where: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise RunFileError(f"{where} has shape {got}; a run of this config has {shape}")
    return value


def _class_array(value: Any, classes: int, dim: int, where: str) -> None:
    """(C, d), or (C, K, d) where each class keeps K sub-centres."""
    ok = (
        isinstance(value, torch.Tensor)
        and value.dim() in (2, 3)
        and value.shape[0] == classes
        and value.shape[-1] == dim
    )
    if not ok:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise RunFileError(f"{where} has shape {got}; a run of this config has ({classes}, {dim})")


def _count(value: Any, where: str, *, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RunFileError(f"{where} must be a whole number ≥ {low}, got {value!r}")
    if high is not None and value > high:
        raise RunFileError(f"{where} must be at most {high}, got {value!r}")
    return value


def _number(value: Any, where: str, *, low: float = -math.inf, high: float = math.inf) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not low <= value <= high:
        raise RunFileError(f"{where} must be a finite number in [{low:g}, {high:g}], got {value!r}")


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."
