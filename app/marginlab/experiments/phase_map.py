"""The (s, m) phase map: real training runs per grid cell, several seeds each, each cell named
by the rule of phase_rule.py (works, underfits, margin too large, unstable, collapsed, NaN).

Every run is the Lab's own run (`default_config` of the loss and dimension) with that s and m,
trained for `steps` steps with the Lab's 200-step margin warm-up (or none, as in the papers:
`warmup=0`), then measured on the whole test set. The default ArcFace grid in 2-D spans a
tiny s (1), the Lab's (16) and the papers' (64), and m from none to past the 36° spacing of ten
classes on a circle (0.8 rad = 46°). Measured on mnist-toy (seeds 0 and 1, benchmarks/README.md,
"phase map"): s ≤ 4 underfits, s = 16 and 64 with m = 0.25 work, m = 0.5 and 0.8 at s ≥ 16 ask
for too much margin, s = 64 without a margin collapses, s = 1 is unstable. 32 runs: 468 s of
CPU on the shared 2-core machine (about 10 s a run on a quiet core). Results are cached in a
JSON file per setup, written after every run, so a stopped sweep resumes and a finished one
reloads at once.

The cache is shared by every session and by processes (two servers, a CLI): it is written
atomically under a unique temporary name (safe_files), read defensively (anything that is not
exactly this setup's grid of runs, e.g. `null`, `[]` or a missing key, is recomputed and the
result says so in "notes"), and the folder keeps at most MAX_CACHE_FILES maps.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from marginlab.data.batches import DeviceData, load_device_data
from marginlab.data.datasets import cache_root
from marginlab.experiments.phase_rule import measure_run, summary
from marginlab.losses.registry import REGISTRY
from marginlab.safe_files import keep_newest, read_json, write_atomically
from marginlab.training.config import default_config, pick_device
from marginlab.training.run import Run
from marginlab.training.sweeps import run_cells

CACHE_VERSION = 2  # bump when a cell's measurements change meaning: old caches are ignored
MAX_CACHE_FILES = 200  # one per setup (loss, dimension, steps, warm-up, seeds, grid)
# Which margin parameter "m" means on the map, per loss (each registry entry's phase
# axis), and its unit.
MARGIN_OF_LOSS: dict[str, str] = {
    name: spec.phase_axis for name, spec in REGISTRY.items() if spec.phase_axis is not None
}
MARGIN_AXIS: dict[str, str] = {
    "m2": "additive angular margin m (rad)",
    "m3": "additive cosine margin m (no unit: subtracted from cos θ)",
    "m1": "multiplicative angular margin m1 (no unit: θ is multiplied by it)",
    "m": "AdaFace margin m (at the mean norm a cosine margin, at low norm an angle in rad)",
}
DEFAULT_S: tuple[float, ...] = (1.0, 4.0, 16.0, 64.0)
DEFAULT_M: dict[str, tuple[float, ...]] = {
    "m2": (0.0, 0.25, 0.5, 0.8),
    "m3": (0.0, 0.1, 0.2, 0.4),
    "m1": (1.0, 1.35, 1.7, 2.2),
    "m": (0.0, 0.1, 0.2, 0.4),
}
DEFAULT_SEEDS: tuple[int, ...] = (0, 1)
DEFAULT_STEPS = 300  # 100 steps at the full margin after the 200-step warm-up
LAB_WARMUP = 200
NO_SNAPSHOTS = 1_000_000  # the sweep reads the model once at the end
SweepProgress = Callable[[int, int, str], None]  # (runs done, runs in all, what just finished)


def margin_tick(name: str, value: float) -> str:
    """An axis label for one margin value: radians with degrees for the angular margin."""
    if name == "m2":
        return f"{value:g} ({math.degrees(value):.0f}°)"
    return f"{value:g}"


def sweep_key(
    loss: str, dim: int, steps: int, warmup: int, dataset: str, seeds: Sequence[int]
) -> str:
    """A short hash naming one setup (its cache file, and the key stored inside it)."""
    text = json.dumps([CACHE_VERSION, loss, dim, steps, warmup, dataset, list(seeds)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def train_cell(
    loss: str,
    dim: int,
    s: float,
    m: float,
    *,
    seed: int,
    steps: int,
    warmup: int,
    dataset: str = "mnist-toy",
    data: DeviceData | None = None,
) -> dict[str, float]:
    """One fresh Lab run at (s, m), `steps` steps, then `phase_rule.measure_run`."""
    if loss not in MARGIN_OF_LOSS:
        raise ValueError(f"the phase map needs a margin loss: one of {', '.join(MARGIN_OF_LOSS)}")
    config = default_config(loss, dim, dataset, seed=seed).with_changes(
        s=float(s),
        margin_warmup_steps=int(warmup),
        snapshot_every=NO_SNAPSHOTS,
        **{MARGIN_OF_LOSS[loss]: float(m)},
    )
    run = Run(config, data=data)
    run.step(steps)
    return measure_run(run)


def _empty(s_values, m_values, seeds, key: str, settings: Mapping[str, Any]) -> dict:
    return {
        "version": CACHE_VERSION,
        "key": key,
        **settings,
        "s_values": list(s_values),
        "m_values": list(m_values),
        "seeds": list(seeds),
        "runs": [[{} for _ in s_values] for _ in m_values],  # runs[i][j][str(seed)]
    }


def _load(path: Path, expected: Mapping) -> tuple[dict | None, str]:
    """(the cached sweep, "") if `path` holds this setup's sweep, else (None, why not)."""
    if not path.exists():
        return None, ""
    cached = read_json(path)
    if cached is not None and cached.get("key") == expected["key"]:
        if cached.get("version") != CACHE_VERSION:
            return None, ""  # an older map, recomputed without alarm
        if _fits(cached, expected):
            return cached, ""
    return (
        None,
        f"the cached map in {path.name} was damaged or foreign: ignored, and computed "
        "again by the next sweep",
    )


def _fits(cached: Mapping, expected: Mapping) -> bool:
    """The same grid and seeds, and every stored run a table of finite numbers that
    phase_rule.summary can read."""
    if any(cached.get(name) != expected[name] for name in ("s_values", "m_values", "seeds")):
        return False
    rows = cached.get("runs")
    if not isinstance(rows, list) or len(rows) != len(expected["m_values"]):
        return False
    for row in rows:
        if not isinstance(row, list) or len(row) != len(expected["s_values"]):
            return False
        for runs in row:
            if not isinstance(runs, dict) or not all(_good_run(run) for run in runs.values()):
                return False
    return True


def _good_run(run: object) -> bool:
    if not isinstance(run, dict) or not run:
        return False
    numbers = all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in run.values()
    )
    try:
        return numbers and bool(summary([run]))
    except (KeyError, TypeError, ValueError):
        return False


def _save(path: Path, result: Mapping) -> None:
    # A unique temporary name per writer, fsync, rename: two sessions (or processes) sweeping
    # the same setup never rename each other's half-written file.
    write_atomically(path, json.dumps({k: v for k, v in result.items() if k != "notes"}).encode())


def with_summaries(result: Mapping) -> dict:
    """The cached runs plus each cell's summary (phase, mean accuracy, spread...)."""
    cells = [
        [
            summary([runs[str(seed)] for seed in result["seeds"] if str(seed) in runs])
            for runs in row
        ]
        for row in result["runs"]
    ]
    return {**result, "cells": cells}


def phase_map(
    loss: str = "arcface",
    dim: int = 2,
    *,
    steps: int = DEFAULT_STEPS,
    warmup: int = LAB_WARMUP,
    s_values: Sequence[float] = DEFAULT_S,
    m_values: Sequence[float] | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    dataset: str = "mnist-toy",
    cache_dir: Path | None = None,
    progress: SweepProgress | None = None,
    cached_only: bool = False,
    executor: Executor | None = None,
) -> dict:
    """Sweep the grid, resuming from the cache; `cached_only` trains nothing (for a page that
    shows what is there). Returns the cache dict plus "cells" (see `with_summaries`):
    cells[i][j] is m_values[i], s_values[j]. `executor` (training.sweeps.sweep_executor) trains
    the runs elsewhere, several at once: local processes or Ray tasks; None: here, in turn."""
    if loss not in MARGIN_OF_LOSS:
        raise ValueError(f"the phase map needs a margin loss: one of {', '.join(MARGIN_OF_LOSS)}")
    if int(steps) < 1 or int(warmup) < 0 or not seeds:
        raise ValueError("the phase map needs steps ≥ 1, warmup ≥ 0 and at least one seed")
    margin_name = MARGIN_OF_LOSS[loss]
    s_values = [float(v) for v in s_values]
    m_values = [float(v) for v in (m_values or DEFAULT_M[margin_name])]
    seeds = [int(seed) for seed in seeds]
    key = sweep_key(loss, dim, steps, warmup, dataset, seeds)
    folder = cache_dir or cache_root() / "phase_maps"
    path = folder / f"{loss}-{dim}d-{key}-{_grid_hash(s_values, m_values)}.json"
    settings = {"loss": loss, "dim": dim, "steps": steps, "warmup": warmup, "dataset": dataset}
    fresh = _empty(s_values, m_values, seeds, key, settings)
    cached, note = _load(path, fresh)
    result = cached or fresh
    if note:
        result["notes"] = [note]
    todo = [
        (i, j, seed)
        for seed in seeds  # one seed over the whole grid first: a stopped sweep shows a map
        for i in range(len(m_values))
        for j in range(len(s_values))
        if str(seed) not in result["runs"][i][j]
    ]
    total = len(seeds) * len(s_values) * len(m_values)
    if cached_only or not todo:
        return with_summaries(result)
    folder.mkdir(parents=True, exist_ok=True)
    keep_newest(folder, "*.json", MAX_CACHE_FILES - 1)
    # In this process the data is loaded once; elsewhere each process loads its own.
    data = None
    if executor is None:
        data = load_device_data(dataset, pick_device("auto"), default_config(loss, dim).probe_size)
    train = functools.partial(
        train_cell, loss, dim, steps=steps, warmup=warmup, dataset=dataset, data=data
    )
    finished = total - len(todo)

    def record(k: int, cell: dict[str, float]) -> None:
        nonlocal finished
        i, j, seed = todo[k]
        result["runs"][i][j][str(seed)] = cell
        _save(path, result)
        finished += 1
        if progress is not None:
            tick = margin_tick(margin_name, m_values[i])
            progress(finished, total, f"s = {s_values[j]:g}, m = {tick}, seed {seed}")

    cells = [{"s": s_values[j], "m": m_values[i], "seed": seed} for i, j, seed in todo]
    run_cells(train, cells, executor=executor, on_result=record)
    return with_summaries(result)


def _grid_hash(s_values: Sequence[float], m_values: Sequence[float]) -> str:
    return hashlib.sha256(json.dumps([s_values, m_values]).encode()).hexdigest()[:8]
