"""A lock-step comparison: up to six runs that see the same batches from the same start.

    comparison = LockstepComparison([default_config(loss, 2) for loss in losses])
    comparison.step(25)                 # every run, the same 25 batches
    comparison.set_params("arcface", m2=0.3)

The comparison owns the one sampler (the runs have none, so a run of a comparison cannot be
stepped alone) and the clock; the runs know nothing of it. Stacking the K backbones into
grouped convolutions was measured slower than a loop on 2 CPU cores (6 runs: 78–97 ms vs
69–73 ms per step), so it loops; it shares the batch indices and the device data, never the
models. An augmentation hook (see Run) is handed to every run: each draws from its own
generator with the same seed, so the augmented batches are identical too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from marginlab.data.batches import BatchSampler, DeviceData, load_device_data
from marginlab.params import MAX_COMPARE
from marginlab.training.config import RunConfig, pick_device
from marginlab.training.run import Augment, Run, budgeted
from marginlab.training.snapshots import Snapshot

# Settings every run of a comparison shares (one sampler, one data set, one start).
SHARED_FIELDS = ("dataset", "dim", "seed", "batch_size", "device", "probe_size")


class LockstepComparison:
    """Up to six runs (different losses, or the same loss with different s/m) that share one
    clock, one sampler (the same batch indices at every step), the seed and the initial
    backbone weights (`init_hashes` shows it). `step(n)` advances all of them."""

    def __init__(
        self,
        configs: Sequence[RunConfig],
        *,
        data: DeviceData | None = None,
        augment: Augment | None = None,
    ) -> None:
        configs = list(configs)
        if not 1 <= len(configs) <= MAX_COMPARE:
            raise ValueError(f"a comparison takes 1 to {MAX_COMPARE} runs, got {len(configs)}")
        first = configs[0]
        for config in configs[1:]:
            for name in SHARED_FIELDS:
                if getattr(config, name) != getattr(first, name):
                    raise ValueError(f"all runs of a comparison need the same {name}")
        if data is None:
            device = pick_device(first.device)
            data = load_device_data(first.dataset, device, first.probe_size)
        self.data = data
        self.sampler = BatchSampler(
            len(data.train_labels), first.batch_size, first.seed, data.device
        )
        self.names = _unique_names([config.loss for config in configs])
        self.runs: dict[str, Run] = {
            name: Run(config, data=data, lockstep=True, augment=augment)
            for name, config in zip(self.names, configs, strict=True)
        }
        self._step_seconds = 0.0

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs.values())

    def __getitem__(self, name: str) -> Run:
        return self.runs[name]

    def __len__(self) -> int:
        return len(self.runs)

    @property
    def steps(self) -> int:
        return next(iter(self.runs.values())).steps

    @property
    def init_hashes(self) -> dict[str, str]:
        return {name: run.init_hash for name, run in self.runs.items()}

    def step(self, n: int = 1) -> None:
        """Advance every run by `n` steps on the same batches."""
        for _ in range(int(n)):
            start = time.perf_counter()
            indices = self.sampler.next_indices()
            for run in self.runs.values():
                run.step_on(indices)
            seconds = time.perf_counter() - start
            self._step_seconds = seconds if self._step_seconds == 0 else (
                0.8 * self._step_seconds + 0.2 * seconds
            )  # fmt: skip

    def step_for(self, seconds: float, max_steps: int | None = None) -> int:
        """As many lock-steps as fit in `seconds` (at least one); returns how many."""
        return budgeted(self._step_seconds, seconds, max_steps, lambda: self.step(1))

    def set_params(self, name: str | None = None, **changes: Any) -> None:
        """Change hyper-parameters of one run (`name`) or of all runs, from the next step.
        batch_size always applies to all runs (they share the sampler)."""
        if "batch_size" in changes:
            batch_size = changes.pop("batch_size")
            configs = [run.config.with_changes(batch_size=batch_size) for run in self]  # checks
            self.sampler.set_batch_size(batch_size)
            for run, config in zip(self, configs, strict=True):
                run.config = config
        targets = self.runs.values() if name is None else [self.runs[name]]
        for run in targets:
            run.set_params(**changes)

    def snapshot(self) -> dict[str, Snapshot]:
        """A snapshot of every run now (see Run.snapshot)."""
        return {name: run.snapshot() for name, run in self.runs.items()}

    def latest_snapshots(self) -> dict[str, Snapshot]:
        return {name: run.latest_snapshot() for name, run in self.runs.items()}


def _unique_names(losses: Iterable[str]) -> list[str]:
    names: list[str] = []
    for loss in losses:
        name, suffix = loss, 2
        while name in names:
            name, suffix = f"{loss}#{suffix}", suffix + 1
        names.append(name)
    return names
