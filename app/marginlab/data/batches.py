"""The data side of training: a dataset's arrays on the device, the fixed probe set, and the
seeded batch sampler that decides which images every step sees.

The sampler draws on the CPU with its own torch.Generator, so the batch order depends only on
the seed and the dataset size: the same on every device, and shared by all runs of a lock-step
comparison (one sampler, one index tensor per step). Indices go to the device with a
non-blocking copy; nothing waits for the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from marginlab.data.datasets import Dataset, load_dataset

# The probe subset is drawn with its own fixed seed: the same images for every run and seed.
PROBE_SEED = 20_190_401


@dataclass(frozen=True, eq=False)
class DeviceData:
    """A dataset as tensors on one device (uint8 images, int64 labels) plus its probe set."""

    dataset: Dataset
    device: torch.device
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    probe_index: np.ndarray  # indices into the test set, sorted
    probe_images: torch.Tensor
    probe_labels: np.ndarray  # int64, on the host: snapshot statistics run in numpy

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.dataset.image_shape)  # type: ignore[return-value]

    @property
    def probe_description(self) -> str:
        total = len(self.dataset.test_labels)
        if len(self.probe_index) == total:
            return f"the whole test set ({total:,} images)"
        return f"a fixed subset of {len(self.probe_index):,} of the {total:,} test images"


def to_device(dataset: Dataset, device: torch.device, probe_size: int) -> DeviceData:
    """Move `dataset` to `device` once; uint8 keeps full MNIST at 47 MB instead of 188 MB."""
    total = len(dataset.test_labels)
    if probe_size >= total:
        probe_index = np.arange(total)
    else:
        generator = torch.Generator().manual_seed(PROBE_SEED)
        probe_index = np.sort(torch.randperm(total, generator=generator)[:probe_size].numpy())
    test_images = torch.from_numpy(np.array(dataset.test_images)).to(device)
    return DeviceData(
        dataset=dataset,
        device=device,
        train_images=torch.from_numpy(np.array(dataset.train_images)).to(device),
        train_labels=torch.from_numpy(np.array(dataset.train_labels)).to(device),
        test_images=test_images,
        test_labels=torch.from_numpy(np.array(dataset.test_labels)).to(device),
        probe_index=probe_index,
        probe_images=test_images[torch.from_numpy(probe_index).to(device)],
        probe_labels=np.asarray(dataset.test_labels)[probe_index].astype(np.int64),
    )


def load_device_data(
    name: str, device: torch.device, probe_size: int, **options: Any
) -> DeviceData:
    return to_device(load_dataset(name, **options), device, probe_size)


class BatchSampler:
    """Shuffled epochs without replacement; a batch never straddles two epochs (the tail of
    each permutation shorter than a batch is dropped, as DataLoader(drop_last=True) does).

    The permutation is drawn on the CPU (so the order is the same on every device) and copied
    to `device` once per epoch; a batch is a slice of that copy, so a step needs no host-to-
    device transfer (a per-step copy of pageable memory can stall a GPU stream)."""

    def __init__(
        self, num_items: int, batch_size: int, seed: int, device: torch.device | None = None
    ) -> None:
        if num_items < batch_size:
            raise ValueError(f"batch_size {batch_size} is larger than the {num_items} images")
        self.num_items = num_items
        self.batch_size = batch_size
        self.device = device or torch.device("cpu")
        self.generator = torch.Generator().manual_seed(seed)
        self._set_order(torch.empty(0, dtype=torch.int64))
        self._position = 0
        self.epoch = 0

    def next_indices(self) -> torch.Tensor:
        """The next batch's indices (int64, on `device`)."""
        if self._position + self.batch_size > len(self._order):
            self._set_order(torch.randperm(self.num_items, generator=self.generator))
            self._position = 0
            self.epoch += 1
        batch = self._device_order[self._position : self._position + self.batch_size]
        self._position += self.batch_size
        return batch

    def set_batch_size(self, batch_size: int) -> None:
        if batch_size > self.num_items:
            raise ValueError(f"batch_size {batch_size} is larger than the {self.num_items} images")
        self.batch_size = batch_size

    def _set_order(self, order: torch.Tensor) -> None:
        self._order = order
        self._device_order = order.to(self.device)

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "order": self._order.clone(),
            "position": self._position,
            "epoch": self.epoch,
            "batch_size": self.batch_size,
            "num_items": self.num_items,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["num_items"]) != self.num_items:
            raise ValueError("the saved sampler belongs to a dataset of another size")
        self.generator.set_state(state["generator"])
        self._set_order(state["order"].clone())
        self._position = int(state["position"])
        self.epoch = int(state["epoch"])
        self.batch_size = int(state["batch_size"])
