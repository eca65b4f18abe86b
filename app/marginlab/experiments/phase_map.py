"""The (s, m) phase map: one short real training run per grid cell (figures draw the result).

Which cells train, which collapse and which blow up is the lesson: in 2-D the paper's
s = 64, m = 0.5 sits in the hard corner. Results are cached to a JSON file per setup, so a
sweep that was stopped resumes, and a finished one reloads at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from marginlab.data.batches import load_device_data
from marginlab.data.datasets import cache_root
from marginlab.figures import compute_phase_map
from marginlab.training.config import default_config, pick_device
from marginlab.training.run import Run

# Which margin parameter "m" means on the map, per loss.
MARGIN_OF_LOSS: dict[str, str] = {
    "arcface": "m2",
    "subcenter-arcface": "m2",
    "combined": "m2",
    "cosface": "m3",
    "sphereface-arccos": "m1",
}
DEFAULT_S = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
DEFAULT_M = {
    "m2": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
    "m3": (0.0, 0.05, 0.1, 0.2, 0.3, 0.4),
    "m1": (1.0, 1.2, 1.4, 1.6, 1.8, 2.0),
}


def short_run_trainer(
    loss: str, dim: int, *, steps: int, dataset: str = "mnist-toy", seed: int = 0
) -> Callable[[float, float], dict]:
    """train_fn(s, m) for compute_phase_map: `steps` steps of a fresh run, then its test
    accuracy on the whole test set and whether any step was not finite."""
    if loss not in MARGIN_OF_LOSS:
        raise ValueError(f"the phase map needs a margin loss: one of {', '.join(MARGIN_OF_LOSS)}")
    margin_name = MARGIN_OF_LOSS[loss]
    base = default_config(loss, dim, dataset, seed=seed)
    data = load_device_data(dataset, pick_device(base.device), base.probe_size)

    def train(s: float, m: float) -> dict:
        run = Run(base.with_changes(s=s, **{margin_name: m}), data=data)
        run.step(steps)
        return {"accuracy": run.evaluate()["test_acc"], "nan_seen": run.nan_seen}

    return train


def sweep_key(loss: str, dim: int, steps: int, dataset: str, seed: int) -> str:
    """A short hash naming one setup (its cache file, and the key stored inside it)."""
    text = json.dumps([loss, dim, steps, dataset, seed])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def phase_map(
    loss: str,
    dim: int,
    *,
    steps: int = 150,
    s_values: Sequence[float] = DEFAULT_S,
    m_values: Sequence[float] | None = None,
    dataset: str = "mnist-toy",
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> Mapping:
    """Sweep the grid (resuming from the cache) and return compute_phase_map's result."""
    m_values = m_values or DEFAULT_M[MARGIN_OF_LOSS.get(loss, "m2")]
    key = sweep_key(loss, dim, steps, dataset, seed)
    folder = cache_dir or cache_root() / "phase_maps"
    folder.mkdir(parents=True, exist_ok=True)
    return compute_phase_map(
        short_run_trainer(loss, dim, steps=steps, dataset=dataset, seed=seed),
        s_values,
        m_values,
        cache_path=folder / f"{loss}-{dim}d-{key}.json",
        progress=progress,
        key=key,
    )
