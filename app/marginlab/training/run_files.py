"""Save and load runs (and lock-step comparisons) safely, one file each.

The file is `torch.save` of a dict that holds only tensors and primitive containers (dict,
list, str, int, float, bool, None): weights, optimiser state, sampler state, the config, the
snapshot history (numpy arrays stored as tensors) and a format tag with a version. Loading uses
`torch.load(..., weights_only=True)`, which refuses to unpickle arbitrary objects, so opening
a run file from a stranger cannot run code.

Writing is atomic: a temporary file in the same directory, flushed and fsynced, then
`os.replace` over the target, so a crash mid-save leaves the old file intact. Loading builds a
brand-new Run; a corrupt, truncated or foreign file raises `RunFileError` with a one-line
message, and nothing that existed before the call is touched.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import RunConfig, device_available
from marginlab.training.run import Run
from marginlab.training.snapshots import Snapshot

FORMAT = "marginlab-run"
FORMAT_VERSION = 1
_KINDS = ("run", "comparison")
_ACCELERATORS = ("cuda", "mps")  # saved device names that another machine may lack


class RunFileError(Exception):
    """A run file that cannot be used: missing, corrupt, truncated, foreign or incompatible."""


# ----- saving ------------------------------------------------------------------------------
def save_run(run: Run, path: str | os.PathLike[str]) -> Path:
    """Write `run` to `path` atomically; returns the path."""
    payload = _header("run") | {"run": _run_payload(run)}
    payload["data"] = _data_fingerprint(run)
    return _write_atomically(payload, Path(path))


def save_comparison(comparison: LockstepComparison, path: str | os.PathLike[str]) -> Path:
    """Write a lock-step comparison (all runs and the shared sampler) to `path` atomically."""
    first = next(iter(comparison))
    payload = _header("comparison") | {
        "names": list(comparison.names),
        "runs": [_run_payload(run) for run in comparison],
        "sampler": comparison.sampler.state_dict(),
        "data": _data_fingerprint(first),
    }
    return _write_atomically(payload, Path(path))


def _header(kind: str) -> dict[str, Any]:
    return {"format": FORMAT, "version": FORMAT_VERSION, "kind": kind}


def _run_payload(run: Run) -> dict[str, Any]:
    return {"state": run.state_dict(), "history": [_snapshot_payload(s) for s in run.history]}


def _data_fingerprint(run: Run) -> dict[str, Any]:
    data = run.data
    return {
        "name": data.dataset.name,
        "train_size": len(data.train_labels),
        "test_size": len(data.test_labels),
        "image_shape": list(data.image_shape),
        "num_classes": data.num_classes,
    }


def _snapshot_payload(snap: Snapshot) -> dict[str, Any]:
    return {
        key: torch.from_numpy(np.ascontiguousarray(value))
        if isinstance(value, np.ndarray)
        else value
        for key, value in snap.to_state().items()
    }


def _write_atomically(payload: dict[str, Any], path: Path) -> Path:
    directory = path.parent if str(path.parent) else Path(".")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    temporary: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=directory, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as handle:
            temporary = Path(handle.name)
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)  # NamedTemporaryFile creates 0600; keep the usual mode
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise
    return path


# ----- loading -----------------------------------------------------------------------------
def load_run(path: str | os.PathLike[str], *, device: str | None = None) -> Run:
    """A new Run restored from `path` (on `device` if given, else the saved config's device)."""
    payload = _read(path, "run")
    try:
        run_payload = payload["run"]
        config = _config(run_payload, device)
        run = Run(config)
        _check_data(payload["data"], run)
        run.load_state_dict(run_payload["state"], _history(run_payload))
    except RunFileError:
        raise
    except Exception as error:  # anything malformed inside a well-formed container
        raise RunFileError(f"{path}: not a usable run file ({_one_line(error)})") from None
    return run


def load_comparison(
    path: str | os.PathLike[str], *, device: str | None = None
) -> LockstepComparison:
    """A new LockstepComparison restored from `path`."""
    payload = _read(path, "comparison")
    try:
        configs = [_config(run_payload, device) for run_payload in payload["runs"]]
        comparison = LockstepComparison(configs)
        _check_data(payload["data"], next(iter(comparison)))
        comparison.sampler.load_state_dict(payload["sampler"])
        for run, run_payload in zip(comparison, payload["runs"], strict=True):
            run.load_state_dict(run_payload["state"], _history(run_payload))
    except RunFileError:
        raise
    except Exception as error:
        raise RunFileError(f"{path}: not a usable comparison file ({_one_line(error)})") from None
    return comparison


def read_kind(path: str | os.PathLike[str]) -> str:
    """ "run" or "comparison" (raises RunFileError for anything else)."""
    return str(_read(path, None)["kind"])


def _read(path: str | os.PathLike[str], kind: str | None) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: no such run file")
    try:
        with warnings.catch_warnings():
            # A foreign pickle makes the safe unpickler warn before it refuses: the refusal,
            # as a RunFileError, is the message that matters.
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise RunFileError(
            f"{path}: not a readable marginlab run file (corrupt, truncated or foreign: "
            f"{_one_line(error)})"
        ) from None
    if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
        raise RunFileError(f"{path}: not a marginlab run file")
    version = payload.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise RunFileError(
            f"{path}: run file format version {version!r}; this marginlab reads up to "
            f"{FORMAT_VERSION}"
        )
    if payload.get("kind") not in _KINDS:
        raise RunFileError(f"{path}: unknown run file kind {payload.get('kind')!r}")
    if kind is not None and payload["kind"] != kind:
        raise RunFileError(f"{path}: holds a {payload['kind']}, not a {kind}")
    return dict(payload)


def _config(run_payload: Mapping[str, Any], device: str | None) -> RunConfig:
    """The saved config, on `device` if given. Without one, a run saved on a device this machine
    lacks (a GPU run opened on a laptop) comes back on "auto": the tensors were read onto the
    CPU (map_location), so only the saved device name stands in the way."""
    values = dict(run_payload["state"]["config"])
    if device is not None:
        values["device"] = device
    elif values.get("device") in _ACCELERATORS and not device_available(values["device"]):
        values["device"] = "auto"
    return RunConfig.from_dict(values)


def _check_data(saved: Mapping[str, Any], run: Run) -> None:
    here = _data_fingerprint(run)
    if dict(saved) != here:
        raise RunFileError(
            f"the run was trained on {saved.get('name')} with {saved.get('train_size')} training "
            f"images; the data here is {here['name']} with {here['train_size']}"
        )


def _history(run_payload: Mapping[str, Any]) -> list[Snapshot]:
    snapshots = []
    for state in run_payload["history"]:
        values = {
            key: value.numpy() if isinstance(value, torch.Tensor) else value
            for key, value in state.items()
        }
        snapshots.append(Snapshot.from_state(values))
    return snapshots


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."
