"""Save and load runs (and lock-step comparisons) safely, one file each.

The file is `torch.save` of a dict that holds only tensors and primitive containers (dict,
list, str, int, float, bool, None): weights, optimiser state, sampler state, the config, the
snapshot history (numpy arrays stored as tensors) and a format tag with a version. Loading uses
`torch.load(..., weights_only=True)`, which refuses to unpickle arbitrary objects, so opening
a run file from a stranger cannot run code; run_file_checks.py checks the archive before that
load and the whole payload after it, before a Run is built, so no file can make the process
allocate more than a bounded config allows.

Writing is atomic (safe_files.write_atomically), so a crash mid-save leaves the old file
intact. Loading builds a brand-new Run; a corrupt, truncated, foreign, oversized or
inconsistent file raises `RunFileError` with a one-line message, and nothing that existed
before the call is touched.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from marginlab.safe_files import write_atomically
from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import RunConfig
from marginlab.training.run import Run
from marginlab.training.run_file_checks import (
    MAX_RUN_FILE_BYTES,
    RunFileError,
    check_archive,
    check_config,
    check_fingerprint,
    check_history,
    check_sampler,
    check_state,
    check_tensors,
    one_line,
)
from marginlab.training.snapshots import Snapshot

FORMAT = "marginlab-run"
FORMAT_VERSION = 1
_KINDS = ("run", "comparison")

__all__ = ["MAX_RUN_FILE_BYTES", "RunFileError", "load_comparison", "load_run", "read_kind"]
__all__ += ["save_comparison", "save_run"]


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
    return write_atomically(path, lambda handle: torch.save(payload, handle))


# ----- loading -----------------------------------------------------------------------------
def load_run(
    path: str | os.PathLike[str],
    *,
    device: str | None = None,
    max_bytes: int = MAX_RUN_FILE_BYTES,
) -> Run:
    """A new Run restored from `path` (on `device` if given, else the saved config's device).

    `max_bytes` bounds the file (the app passes its upload limit)."""
    payload = _read(path, "run", max_bytes)
    try:
        data, run_payloads, configs = _parsed(payload, device)
        run = Run(configs[0])
        _fill(run, data, run_payloads, payload)
    except RunFileError as error:
        raise RunFileError(_named(path, error)) from None
    except Exception as error:  # anything malformed inside a well-formed container
        raise RunFileError(f"{path}: not a usable run file ({one_line(error)})") from None
    return run


def load_comparison(
    path: str | os.PathLike[str],
    *,
    device: str | None = None,
    max_bytes: int = MAX_RUN_FILE_BYTES,
) -> LockstepComparison:
    """A new LockstepComparison restored from `path`."""
    payload = _read(path, "comparison", max_bytes)
    try:
        data, run_payloads, configs = _parsed(payload, device)
        comparison = LockstepComparison(configs)
        _fill(comparison, data, run_payloads, payload)
    except RunFileError as error:
        raise RunFileError(_named(path, error)) from None
    except Exception as error:
        raise RunFileError(f"{path}: not a usable comparison file ({one_line(error)})") from None
    return comparison


def restore(trainer: Run | LockstepComparison, path: str | os.PathLike[str]) -> None:
    """Put the state saved at `path` into `trainer`, freshly built for the same setup (its
    configs, data and augmentation): a fork of a shared run (training.service.sharing)."""
    kind = "comparison" if isinstance(trainer, LockstepComparison) else "run"
    payload = _read(path, kind, MAX_RUN_FILE_BYTES)
    try:
        data, run_payloads, configs = _parsed(payload, None)
        if configs != [run.config for run in _runs(trainer)]:
            raise RunFileError(f"saved with other settings than this {kind}")
        _fill(trainer, data, run_payloads, payload)
    except RunFileError as error:
        raise RunFileError(_named(path, error)) from None
    except Exception as error:
        raise RunFileError(f"{path}: does not fit this {kind} ({one_line(error)})") from None


def _parsed(
    payload: Mapping[str, Any], device: str | None
) -> tuple[Mapping[str, Any], list[Mapping[str, Any]], list[RunConfig]]:
    """The checked data fingerprint, run payloads and configs of a run or comparison file."""
    data = check_fingerprint(payload.get("data"))
    if payload["kind"] == "run":
        run_payloads = [_run_payload_of(payload.get("run"))]
    else:
        runs = payload.get("runs")
        if not isinstance(runs, list) or not runs:
            raise RunFileError("it holds no runs")
        run_payloads = [_run_payload_of(run_payload) for run_payload in runs]
    configs = [_checked_run(run_payload, data, device) for run_payload in run_payloads]
    if payload["kind"] == "comparison":
        check_sampler(payload.get("sampler"), configs[0].batch_size)
    return data, run_payloads, configs


def _fill(
    trainer: Run | LockstepComparison,
    data: Mapping[str, Any],
    run_payloads: list[Mapping[str, Any]],
    payload: Mapping[str, Any],
) -> None:
    """Load checked payloads into a trainer built from their configs."""
    runs = _runs(trainer)
    _check_data(data, runs[0])
    if isinstance(trainer, LockstepComparison):
        trainer.sampler.load_state_dict(payload["sampler"])
    for run, run_payload in zip(runs, run_payloads, strict=True):
        run.load_state_dict(run_payload["state"], _history(run_payload))


def _runs(trainer: Run | LockstepComparison) -> list[Run]:
    return list(trainer) if isinstance(trainer, LockstepComparison) else [trainer]


def read_kind(path: str | os.PathLike[str], *, max_bytes: int = MAX_RUN_FILE_BYTES) -> str:
    """ "run" or "comparison" (raises RunFileError for anything else)."""
    return str(_read(path, None, max_bytes)["kind"])


def _read(path: str | os.PathLike[str], kind: str | None, max_bytes: int) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: no such run file")
    check_archive(path, max_bytes)
    try:
        with warnings.catch_warnings():
            # A foreign pickle makes the safe unpickler warn before it refuses: the refusal,
            # as a RunFileError, is the message that matters.
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise RunFileError(
            f"{path}: not a readable marginlab run file (corrupt, truncated or foreign: "
            f"{one_line(error)})"
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
    try:
        check_tensors(payload)
    except RunFileError as error:
        raise RunFileError(_named(path, error)) from None
    return dict(payload)


def _run_payload_of(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not isinstance(value.get("state"), Mapping):
        raise RunFileError("its run is not a table with a state")
    return value


def _checked_run(
    run_payload: Mapping[str, Any], data: Mapping[str, Any], device: str | None
) -> RunConfig:
    """The run's config, after its counters and history passed their checks."""
    state = run_payload["state"]
    config = check_config(state.get("config"), device)
    check_state(state, config)
    check_history(run_payload.get("history"), config, data, int(state.get("steps", 0)))
    return config


def _named(path: str | os.PathLike[str], error: RunFileError) -> str:
    text = str(error)
    return text if text.startswith(str(path)) else f"{path}: {text}"


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
