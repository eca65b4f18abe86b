"""The non-finite guard: one optimisation step that changes nothing when it goes wrong.

A step whose loss or any gradient is not finite leaves the weights, BatchNorm statistics,
centres and AdamW moments as they were; the caller still advances its step counter and
schedules, and counts the step as skipped. Two ways, same outcome (tests/test_training.py):
- `checked` (CPU, where reading a device value is free): look at the loss and the gradients,
  then step or not;
- `masked` (GPUs): never wait for the device: always step, then put the old state back with
  torch.where where `finite` is false.
So the papers' s = 64, m = 0.5 in 2-D may struggle but never holds a NaN.

Also `Window`: the running loss/accuracy sums since the last snapshot, kept on the device so a
step needs no host synchronisation (read once per snapshot).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from marginlab.losses.heads import MarginHead


class NonFiniteGuard:
    """Guarded steps of one backbone + head + optimiser (`sync_free` picks the GPU way)."""

    def __init__(
        self,
        backbone: torch.nn.Module,
        head: MarginHead,
        optimizer: torch.optim.Optimizer,
        *,
        sync_free: bool,
    ) -> None:
        self.backbone = backbone
        self.head = head
        self.optimizer = optimizer
        self.sync_free = sync_free

    def update(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One guarded step: (detached loss, detached features, finite as a device bool)."""
        if self.sync_free:
            return self._masked(images, labels)
        return self._checked(images, labels)

    def _checked(self, images: torch.Tensor, labels: torch.Tensor):
        """Look, then act. Only the buffers (BatchNorm statistics, centres) are saved, since
        the forward pass and after_step change them before or regardless of the verdict."""
        buffers = self.buffers()
        saved = [buffer.clone() for buffer in buffers]
        features = self.backbone(images)
        loss = self.head.compute_loss(features, labels)
        self.optimizer.zero_grad(set_to_none=False)
        finite = bool(torch.isfinite(loss))
        if finite:
            loss.backward()
            grads = [p.grad for p in self.parameters() if p.grad is not None]
            finite = bool(torch.isfinite(torch.stack([g.sum() for g in grads]).sum()))
        if finite:
            self.optimizer.step()
        self.head.after_step(features.detach(), labels)  # also advances SphereFace's λ clock
        if not finite:
            self.optimizer.zero_grad(set_to_none=False)
            for buffer, before in zip(buffers, saved, strict=True):
                buffer.copy_(before)
        return loss.detach(), features.detach(), torch.tensor(finite, device=loss.device)

    def _masked(self, images: torch.Tensor, labels: torch.Tensor):
        """Always step, then put back with torch.where everything a non-finite step touched."""
        had_optimizer_state = bool(self.optimizer.state)
        state = self.state_tensors()
        saved = [tensor.clone() for tensor in state]
        features = self.backbone(images)
        loss = self.head.compute_loss(features, labels)
        finite = torch.isfinite(loss)
        self.optimizer.zero_grad(set_to_none=False)
        torch.where(finite, loss, torch.zeros_like(loss)).backward()
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        finite = finite & torch.isfinite(torch.stack([g.sum() for g in grads]).sum())
        for grad in grads:
            grad.nan_to_num_(0.0, 0.0, 0.0).mul_(finite)
        self.optimizer.step()
        self.head.after_step(features.detach(), labels)
        for tensor, before in zip(state, saved, strict=True):
            tensor.copy_(torch.where(finite.to(tensor.device), tensor, before))
        if not had_optimizer_state:
            # AdamW created its moments in this step: zero moments at step 0 equal none.
            for tensor in self.optimizer_state_tensors():
                tensor.copy_(torch.where(finite.to(tensor.device), tensor, 0))
        return loss.detach(), features.detach(), finite

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        yield from self.backbone.parameters()
        yield from self.head.parameters()

    def state_tensors(self) -> list[torch.Tensor]:
        """Everything a step may change: parameters, buffers (BatchNorm statistics, centres,
        sub-centre counts) and the optimiser's state."""
        tensors = [p.data for p in self.parameters()] + self.buffers()
        return tensors + self.optimizer_state_tensors()

    def buffers(self) -> list[torch.Tensor]:
        return list(self.backbone.buffers()) + list(self.head.buffers())

    def optimizer_state_tensors(self) -> list[torch.Tensor]:
        return [
            value
            for param_state in self.optimizer.state.values()
            for value in param_state.values()
            if isinstance(value, torch.Tensor)
        ]


@dataclass(frozen=True)
class WindowValues:
    loss_sum: float
    finite_steps: int
    correct: int
    seen: int


class Window:
    """Running sums since the last snapshot: on the device, read (one sync) at snapshots."""

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(3, dtype=torch.float64, device=device)
        self.seen = 0  # images, counted on the host: a device scalar made per step would sync

    def add(
        self, loss: torch.Tensor, finite: torch.Tensor, correct: torch.Tensor, seen: int
    ) -> None:
        zero = torch.zeros_like(loss)
        update = torch.stack(
            [torch.where(finite, loss, zero).double(), finite.double(), correct.double()]
        )
        self.sums += update
        self.seen += seen

    def read_and_reset(self) -> WindowValues:
        loss_sum, finite_steps, correct = self.sums.tolist()
        seen, self.seen = self.seen, 0
        self.sums.zero_()
        return WindowValues(loss_sum, int(finite_steps), int(correct), seen)
