"""A lock-step comparison as ONE batched model: the K backbones stacked and run under vmap.

    batched = StackedLockstep(LockstepComparison(configs))   # same initial weights, same batches
    batched.step(100)

Why this form (bench_gpu.py measures it against the engine's loop): the K backbones have the
same shapes and see the same batch, so `torch.func.functional_call` under `vmap` over stacked
weights runs each layer once for all K: a convolution with batched weights becomes one grouped
convolution, a linear layer one batched matmul, and BatchNorm keeps per-model statistics (the
vmap rule updates the stacked running buffers). On a GPU the loop is bound by kernel launches
(six small models, about a hundred launches each per step); batched it makes about K times
fewer. The heads differ per loss (and are tiny: C × d), so they stay a loop. Hand-written
grouped convolutions do the same arithmetic with more code, and on 2 CPU cores stacking was
measured slower than the loop (training/run.py), which is why the engine loops there.

What stays equal to K separate runs: one AdamW over stacked tensors is K AdamWs (its update is
element-wise), given that the K configs share the learning rate, its schedule and the weight
decay (checked). The margin warm-up and SphereFace's λ clock are per head, as in Run.
The non-finite guard is per model, as in Run's sync-free guard (a (K,) mask, torch.where,
no host sync), with one difference: AdamW keeps one step count per stacked tensor, so a step
skipped by one model only still advances that count for all (a small change of its bias
correction); the engine's loop has none of that. Snapshots are not part of this class:
it measures training steps.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torch.func import functional_call, stack_module_state, vmap

from marginlab.data.batches import BatchSampler
from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import learning_rate, ramped_margin

_SHARED = ("lr", "weight_decay", "lr_decay_steps", "lr_min_factor", "batch_size", "seed")


class StackedLockstep:
    """The runs of `comparison` (taken at their current weights) trained as one stacked model."""

    def __init__(self, comparison: LockstepComparison) -> None:
        runs = list(comparison)
        self.configs = [run.config for run in runs]
        first = self.configs[0]
        for name in _SHARED:
            if any(getattr(config, name) != getattr(first, name) for config in self.configs):
                raise ValueError(f"stacking needs the same {name} in every run")
        self.data = runs[0].data
        self.device = self.data.device
        self.sampler = BatchSampler(
            len(self.data.train_labels), first.batch_size, first.seed, self.device
        )
        backbones = [copy.deepcopy(run.backbone).train() for run in runs]
        self.params, self.buffers = stack_module_state(backbones)
        self._skeleton = copy.deepcopy(backbones[0]).to("meta")
        self.heads = [copy.deepcopy(run.head).train() for run in runs]
        self.steps = runs[0].steps
        self.correct = torch.zeros((), dtype=torch.int64, device=self.device)
        self.skipped = torch.zeros(len(runs), dtype=torch.int64, device=self.device)
        self._applied: list[dict[str, float] | None] = [None] * len(runs)
        self._forward = vmap(self._one_backbone, in_dims=(0, 0, None))
        self.optimizer = self._adamw()

    @property
    def size(self) -> int:
        return len(self.heads)

    def step(self, n: int = 1) -> None:
        for _ in range(int(n)):
            self._train_on(self.sampler.next_indices())
            self.steps += 1

    # ----- internals ---------------------------------------------------------------------
    def _one_backbone(self, params, buffers, images: torch.Tensor) -> torch.Tensor:
        return functional_call(self._skeleton, (params, buffers), (images,))

    def _adamw(self) -> torch.optim.Optimizer:
        """As training/run.py builds it: no weight decay on per-model 1-D tensors."""
        decayed, plain = [], []
        for tensor in self.params.values():  # stacked: one leading model axis
            (decayed if tensor.dim() > 2 else plain).append(tensor)
        for head in self.heads:
            for parameter in head.parameters():
                (decayed if parameter.dim() > 1 else plain).append(parameter)
        config = self.configs[0]
        groups = [
            {"params": decayed, "weight_decay": config.weight_decay},
            {"params": plain, "weight_decay": 0.0},
        ]
        capturable = self.device.type == "cuda"
        return torch.optim.AdamW(groups, lr=config.lr, capturable=capturable, foreach=True)

    def _apply_schedules(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.configs[0], self.steps)
        for k, (head, config) in enumerate(zip(self.heads, self.configs, strict=True)):
            margin = ramped_margin(config, self.steps)
            if margin != self._applied[k]:  # as Run: only when the warm-up changed it
                head.set_params(**margin)
                self._applied[k] = margin

    def _train_on(self, index: torch.Tensor) -> None:
        self._apply_schedules()
        images, labels = self.data.train_images[index], self.data.train_labels[index]
        had_state = bool(self.optimizer.state)
        saved = [(tensor, tensor.clone(), owner) for tensor, owner in self._state()]
        features = self._forward(self.params, self.buffers, images)  # (K, B, d)
        losses = torch.stack(
            [head.compute_loss(features[k], labels) for k, head in enumerate(self.heads)]
        )
        finite = torch.isfinite(losses)
        self.optimizer.zero_grad(set_to_none=False)
        torch.where(finite, losses, torch.zeros_like(losses)).sum().backward()
        finite = finite & self._finite_gradients()
        for tensor, owner in self._gradients():
            tensor.nan_to_num_(0.0, 0.0, 0.0).mul_(self._mask(finite, owner, tensor))
        self.optimizer.step()
        with torch.no_grad():
            for k, head in enumerate(self.heads):
                head.after_step(features[k].detach(), labels)
                predictions = head.plain_logits(features[k].detach()).argmax(1)
                self.correct += (predictions == labels).sum()
        for tensor, before, owner in saved:
            tensor.copy_(torch.where(self._mask(finite, owner, tensor), tensor, before))
        if not had_state:  # AdamW made its moments in this step: zero moments equal none
            for tensor, owner in self._optimizer_state():
                tensor.copy_(torch.where(self._mask(finite, owner, tensor), tensor, 0))
        self.skipped += (~finite).long()

    def _owned(self) -> Iterator[tuple[torch.Tensor, int | None]]:
        """Parameters with their owner: None for a stacked tensor (axis 0 = model), else k."""
        for tensor in self.params.values():
            yield tensor, None
        for k, head in enumerate(self.heads):
            for parameter in head.parameters():
                yield parameter, k

    def _gradients(self) -> Iterator[tuple[torch.Tensor, int | None]]:
        for parameter, owner in self._owned():
            if parameter.grad is not None:
                yield parameter.grad, owner

    def _finite_gradients(self) -> torch.Tensor:
        """(K,) whether model k's gradients are all finite (their sum is: NaN and ±inf carry)."""
        stacked = torch.zeros(self.size, device=self.device)
        per_head = [torch.zeros((), device=self.device) for _ in range(self.size)]
        for grad, owner in self._gradients():
            if owner is None:
                stacked = stacked + grad.flatten(1).sum(1)
            else:
                per_head[owner] = per_head[owner] + grad.sum()
        return torch.isfinite(stacked + torch.stack(per_head))

    def _optimizer_state(self) -> Iterator[tuple[torch.Tensor, int | None | str]]:
        for parameter, owner in self._owned():
            for name, value in self.optimizer.state.get(parameter, {}).items():
                if isinstance(value, torch.Tensor):
                    # A stacked tensor's step count is one scalar for all models.
                    yield value, ("any" if owner is None and name == "step" else owner)

    def _state(self) -> list[tuple[torch.Tensor, int | None | str]]:
        state: list[tuple[torch.Tensor, int | None | str]] = [
            (p.data, owner) for p, owner in self._owned()
        ]
        state += [(buffer, None) for buffer in self.buffers.values()]
        for k, head in enumerate(self.heads):
            state += [(buffer, k) for buffer in head.buffers()]
        return state + list(self._optimizer_state())

    def _mask(self, finite: torch.Tensor, owner: int | None | str, tensor: torch.Tensor):
        if owner is None:
            return finite.view(-1, *([1] * (tensor.dim() - 1)))
        if owner == "any":
            return finite.any()
        return finite[owner]
