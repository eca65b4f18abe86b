"""One training run: a model (backbone + margin head), AdamW, the data stream and the schedules.

    run = Run(default_config("arcface", dim=2))
    run.step(25)                    # 25 optimisation steps
    run.set_params(m2=0.3, lr=3e-3) # takes effect at the next step, no restart
    run.step_for(0.1)               # as many steps as fit in 100 ms
    snap = run.latest_snapshot()    # embeddings of the probe set, weights, statistics, ...

Where the parts live: the model's initialisation and optimiser in model.py, the non-finite guard
in guard.py, snapshots in snapshots.py, run files in run_files.py, the lock-step comparison of
several runs in comparison.py (it owns the sampler and hands each run its batch indices).

Design notes (why):
- Data lives on the device as uint8 tensors; batch indices come from one seeded CPU sampler
  (data.batches.BatchSampler), so no per-step host↔device synchronisation is needed. The only
  reads of device values happen when a snapshot is taken (or evaluate/nan_seen is asked).
- A non-finite step changes nothing (guard.py); the step counter and the schedules (margin
  warm-up, learning rate, SphereFace's λ) still advance, `skipped_steps` counts it.
- Metrics never contain NaN: snapshots are built from finite values only (see snapshots.py);
  `evaluate()` reports a non-finite test loss as 0.0 (the accuracy is always finite).
- Snapshots: `test_acc` is measured on a fixed probe subset of the test set (1,000 images by
  default, `probe_description`); `evaluate()` uses the whole test set.
- Augmentation: `augment(images, generator)` maps a training batch (uint8, as stored) to the
  images the backbone sees; the run owns the generator (seeded by the config's seed, on the
  CPU so every device draws the same numbers) and saves its state, so a resumed run augments
  exactly as one never saved. Evaluation and snapshots are never augmented.
- Reproducible: the same config (seed included) on the same device and thread count gives the
  same metrics bit for bit on CPU.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from marginlab.data.batches import BatchSampler, DeviceData, load_device_data
from marginlab.params import STRUCTURAL
from marginlab.training.backbones import state_hash
from marginlab.training.config import (
    HEAD_FIELDS,
    RunConfig,
    learning_rate,
    pick_device,
    ramped_margin,
)
from marginlab.training.evaluation import embed_eval, test_set_metrics
from marginlab.training.guard import NonFiniteGuard, Window
from marginlab.training.memory import release_freed_memory
from marginlab.training.model import build_optimizer, initial_model
from marginlab.training.snapshots import Snapshot, build_snapshot, history_limit

# A long job's progress callback: (fraction done in [0, 1], what is happening). Experiments and
# lesson checks take one.
Progress = Callable[[float, str], None]
# Hyper-parameters that may change between steps (everything else needs a new run).
MUTABLE_FIELDS: tuple[str, ...] = tuple(name for name in HEAD_FIELDS if name not in STRUCTURAL) + (
    "lr",
    "weight_decay",
    "batch_size",
    "margin_warmup_steps",
    "lr_decay_steps",
    "lr_min_factor",
    "snapshot_every",
)
# The augmentation hook: a training batch as stored (uint8) and the run's generator in, the
# images the backbone trains on out.
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class Run:
    """One model trained with one loss. Not thread-safe: one caller at a time.

    `lockstep=True` makes a run without a sampler of its own: a LockstepComparison feeds it
    batch indices through `step_on`."""

    def __init__(
        self,
        config: RunConfig,
        *,
        data: DeviceData | None = None,
        lockstep: bool = False,
        augment: Augment | None = None,
    ) -> None:
        self.config = config
        if data is None:
            device = pick_device(config.device)
            data = load_device_data(config.dataset, device, config.probe_size)
        self.data = data
        self.device = data.device
        self.sampler: BatchSampler | None = None
        if not lockstep:
            self.sampler = BatchSampler(
                len(data.train_labels), config.batch_size, config.seed, data.device
            )
        self.augment = augment
        self._augment_generator = torch.Generator().manual_seed(config.seed) if augment else None
        self.backbone, self.head = initial_model(config, data)
        self.init_hash = state_hash(self.backbone)
        self.backbone.to(self.device).train()
        self.head.to(self.device).train()
        self.optimizer = build_optimizer(self.backbone, self.head, config, self.device)
        # Where reading a device value would stall the device, guard without looking.
        self.guard = NonFiniteGuard(
            self.backbone, self.head, self.optimizer, sync_free=self.device.type != "cpu"
        )
        self.steps = 0
        self.elapsed = 0.0  # seconds spent inside step() (training and snapshots)
        self._applied_margin: dict[str, float] | None = None
        self._window = Window(self.device)
        self._skipped = torch.zeros((), dtype=torch.int64, device=self.device)
        self._last_loss = 0.0
        self._last_train_acc = 0.0
        self._step_seconds = 0.0  # moving average, for step_for
        self.history: deque[Snapshot] = deque(maxlen=config.history_size)
        self._resize_history_once = True

    # ----- training ------------------------------------------------------------------------
    def step(self, n: int = 1) -> None:
        """Advance `n` optimisation steps (snapshots every `snapshot_every` steps)."""
        sampler = self._own_sampler()
        for _ in range(int(n)):
            self.step_on(sampler.next_indices())

    def step_for(self, seconds: float, max_steps: int | None = None) -> int:
        """As many steps as fit in `seconds` (at least one); returns how many were taken."""
        self._own_sampler()
        return budgeted(self._step_seconds, seconds, max_steps, lambda: self.step(1))

    def step_on(self, indices: torch.Tensor) -> None:
        """One step on the training images at `indices` plus its bookkeeping (the comparison
        calls this). `elapsed` counts training and scheduled snapshots, not snapshots the
        caller asks for between steps."""
        start = time.perf_counter()
        if not self.history:
            self.snapshot()  # step 0: the untrained geometry, for replays
        self._train_on(indices)
        self.steps += 1
        self.elapsed += time.perf_counter() - start
        if self.steps % self.config.snapshot_every == 0:
            before = time.perf_counter()
            self.snapshot()
            self.elapsed += time.perf_counter() - before
        seconds = time.perf_counter() - start
        self._step_seconds = seconds if self._step_seconds == 0 else (
            0.8 * self._step_seconds + 0.2 * seconds
        )  # fmt: skip

    def set_params(self, **changes: Any) -> None:
        """Change hyper-parameters between steps; validated, in force from the next step.

        Head values (s, m1, m2, m3, sphere_m, lam, lambda_schedule, policy, center_lambda,
        center_alpha) and lr, weight_decay, batch_size, margin_warmup_steps, lr_decay_steps,
        lr_min_factor, snapshot_every. The margin warm-up still scales a new margin while
        step < margin_warmup_steps. A run of a comparison takes batch_size from the comparison.
        """
        fixed = sorted(set(changes) - set(MUTABLE_FIELDS))
        if fixed:
            raise ValueError(f"cannot change {', '.join(fixed)} during a run; start a new run")
        if "batch_size" in changes and self.sampler is None:
            raise ValueError("the runs of a comparison share batch_size: set it on the comparison")
        config = self.config.with_changes(**changes)  # validates everything
        head_changes = {k: v for k, v in changes.items() if k in HEAD_FIELDS}
        if head_changes:
            self.head.set_params(**{**head_changes, **ramped_margin(config, self.steps)})
        if "batch_size" in changes and self.sampler is not None:
            self.sampler.set_batch_size(config.batch_size)
        self.config = config
        self._applied_margin = None  # re-apply the ramped margin at the next step

    @property
    def sync_free_guard(self) -> bool:
        """Whether the guard steps without reading device values (see guard.py)."""
        return self.guard.sync_free

    @sync_free_guard.setter
    def sync_free_guard(self, value: bool) -> None:
        self.guard.sync_free = bool(value)

    # ----- looking at the run ---------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Take a snapshot now (reads device values: the one host synchronisation point).

        Loss and train_acc cover the steps since the previous snapshot; with no step in
        between (or only skipped ones) they repeat the previous values. Asking again at the
        same step with the same hyper-parameters returns the same snapshot (no duplicate)."""
        params = self.current_params()
        latest = self.history[-1] if self.history else None
        if latest is not None and latest.step == self.steps and latest.params == params:
            return latest
        features, predictions = self._embed_probe()
        window = self._window.read_and_reset()
        if window.finite_steps:
            self._last_loss = window.loss_sum / window.finite_steps
        if window.seen:
            self._last_train_acc = window.correct / window.seen
        snap = build_snapshot(
            step=self.steps,
            wall_time=self.elapsed,
            loss=self._last_loss,
            train_acc=self._last_train_acc,
            features=features,
            labels=self.data.probe_labels,
            predictions=predictions,
            weights=self.head.class_weights().float().cpu().numpy(),
            centers=None if self.head.centers is None else self.head.centers.float().cpu().numpy(),
            params=params,
            skipped_steps=int(self._skipped.item()),
            subcenters=self.head.subcenter_weights().float().cpu().numpy(),
            state=self.head.running_statistics(),
        )
        self._append(snap)
        release_freed_memory()  # see training_memory: keeps a long history from bloating RSS
        return snap

    def latest_snapshot(self) -> Snapshot:
        """The newest snapshot (one is taken if there is none yet)."""
        return self.history[-1] if self.history else self.snapshot()

    def current_params(self) -> dict[str, Any]:
        """Hyper-parameters in force at the next step: head values with the warm-up applied."""
        params = {**self.head.params(), **ramped_margin(self.config, self.steps)}
        current_lambda = getattr(self.head, "current_lambda", None)
        if current_lambda is not None:
            params["lam"] = float(current_lambda)
        return {
            "loss": self.config.loss,
            **{k: params.get(k, getattr(self.config, k)) for k in HEAD_FIELDS},
            "lr": learning_rate(self.config, self.steps),
        }

    @property
    def nan_seen(self) -> bool:
        """Whether any step so far had a non-finite loss or gradient (it was skipped)."""
        return self.skipped_steps > 0

    @property
    def skipped_steps(self) -> int:
        return int(self._skipped.item())

    @property
    def probe_description(self) -> str:
        """What the snapshots' test_acc is measured on."""
        return self.data.probe_description

    @torch.no_grad()
    def embed(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        """(N, d) float32 embeddings of any images (uint8 or [0, 1]), eval mode."""
        images = torch.as_tensor(images).to(self.device)
        return self._embed(images).float().cpu().numpy()

    def evaluate(self) -> dict[str, float]:
        """Accuracy and mean loss (margin included) on the WHOLE test set, eval mode.

        A pure function of the weights and hyper-parameters: a saved and reloaded run gives
        the same numbers (bit for bit on most machines; on an AVX-512 one the mean loss
        differed in its 8th digit)."""
        self._apply_margin()  # the margin in force at the next step, also right after a load
        return test_set_metrics(self.backbone, self.head, self.data, self.config.dim)

    # ----- saving and restoring (run_files.py writes these to a file) -------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: tensors and primitive containers only."""
        return {
            "config": self.config.to_dict(),
            "steps": self.steps,
            "elapsed": self.elapsed,
            "init_hash": self.init_hash,
            "backbone": self.backbone.state_dict(),
            "head": self.head.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "sampler": None if self.sampler is None else self.sampler.state_dict(),
            "augment_generator": (
                None if self._augment_generator is None else self._augment_generator.get_state()
            ),
            "window": self._window.sums.clone(),
            "window_seen": self._window.seen,
            "skipped": self._skipped.clone(),
            "last_loss": self._last_loss,
            "last_train_acc": self._last_train_acc,
            "step_seconds": self._step_seconds,
        }

    def load_state_dict(self, state: dict[str, Any], history: Iterable[Snapshot] = ()) -> None:
        """Restore a state_dict() (the config must already match; run_files.py checks that)."""
        self.backbone.load_state_dict(state["backbone"])
        self.head.load_state_dict(state["head"])
        optimizer_state = dict(state["optimizer"])
        # The capturable flag follows this run's device, not the device the run was saved on.
        optimizer_state["param_groups"] = [
            {**group, "capturable": self.device.type == "cuda"}
            for group in optimizer_state["param_groups"]
        ]
        self.optimizer.load_state_dict(optimizer_state)
        if state["sampler"] is not None and self.sampler is not None:
            self.sampler.load_state_dict(state["sampler"])
        generator_state = state.get("augment_generator")
        if generator_state is not None and self._augment_generator is not None:
            self._augment_generator.set_state(generator_state)
        self.steps = int(state["steps"])
        self.elapsed = float(state["elapsed"])
        self._window.sums.copy_(state["window"])
        self._window.seen = int(state["window_seen"])
        self._skipped.copy_(state["skipped"])
        self._last_loss = float(state["last_loss"])
        self._last_train_acc = float(state["last_train_acc"])
        self._step_seconds = float(state["step_seconds"])
        self._applied_margin = None
        self.history = deque(maxlen=self.config.history_size)
        self._resize_history_once = True
        for snap in history:
            self._append(snap)

    # ----- internals ---------------------------------------------------------------------------
    def _own_sampler(self) -> BatchSampler:
        if self.sampler is None:
            raise RuntimeError("this run belongs to a LockstepComparison: step the comparison")
        return self.sampler

    def _apply_schedules(self) -> None:
        lr = learning_rate(self.config, self.steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
            group["weight_decay"] = self.config.weight_decay if group["decayed"] else 0.0
        self._apply_margin()

    def _apply_margin(self) -> None:
        """Put the warm-up's margin for the coming step into the head (if it changed)."""
        margin = ramped_margin(self.config, self.steps)
        if margin != self._applied_margin:
            self.head.set_params(**margin)
            self._applied_margin = margin

    def _train_on(self, indices: torch.Tensor) -> None:
        """One optimisation step on the training images at `indices` (int64, on the device)."""
        self._apply_schedules()
        index = indices.to(self.device)  # already there when it comes from the sampler
        images = self.data.train_images[index]
        labels = self.data.train_labels[index]
        if self.augment is not None:
            images = self.augment(images, self._augment_generator)
        loss, features, finite = self.guard.update(images, labels)
        with torch.no_grad():
            predictions = self.head.plain_logits(features).argmax(1)
        self._window.add(loss, finite, (predictions == labels).sum(), len(labels))
        self._skipped += (~finite).long()

    def _optimizer_state_tensors(self) -> list[torch.Tensor]:
        return self.guard.optimizer_state_tensors()

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        return embed_eval(self.backbone, images, self.config.dim)

    @torch.no_grad()
    def _embed_probe(self) -> tuple[np.ndarray, np.ndarray]:
        features = self._embed(self.data.probe_images)
        predictions = self.head.plain_logits(features).argmax(1)
        return features.float().cpu().numpy(), predictions.cpu().numpy()

    def _append(self, snap: Snapshot) -> None:
        if self._resize_history_once:
            # The first snapshot tells its size: cap the history by the memory budget.
            limit = history_limit(
                self.config.history_size, self.config.history_memory_mb, snap.nbytes
            )
            self.history = deque(self.history, maxlen=limit)
            self._resize_history_once = False
        self.history.append(snap)


def budgeted(step_seconds: float, seconds: float, max_steps: int | None, take_step: Any) -> int:
    """Steps until the budget would be exceeded (by the running per-step estimate)."""
    deadline = time.perf_counter() + float(seconds)
    taken = 0
    while max_steps is None or taken < max_steps:
        take_step()
        taken += 1
        if time.perf_counter() + step_seconds > deadline:
            break
    return taken


__all__ = ["MUTABLE_FIELDS", "Augment", "Run", "RunConfig", "Snapshot", "budgeted"]
