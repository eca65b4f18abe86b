"""Looking at a model without training it: eval-mode embeddings and whole-test-set metrics.

Both are pure functions of the weights and hyper-parameters (a saved and reloaded run gives the
same numbers bit for bit), and never augmented.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F

from marginlab.data.batches import DeviceData
from marginlab.losses.heads import MarginHead
from marginlab.training.backbones import EmbeddingNet, eval_forward

# Images per evaluation forward pass: bounds device memory; on CPU 256 ran 2× faster than 1024
# (the activations stay in cache).
EVAL_CHUNK = 256


def embed_eval(backbone: torch.nn.Module, images: torch.Tensor, dim: int) -> torch.Tensor:
    """(N, dim) embeddings in eval mode (BatchNorm's running statistics), in chunks; the
    backbone's training flag is put back afterwards. The app's own nets run with their
    BatchNorms folded in (`backbones.eval_forward`)."""
    forward = partial(eval_forward, backbone) if isinstance(backbone, EmbeddingNet) else backbone
    was_training = backbone.training
    backbone.eval()
    try:
        chunks = [
            forward(images[start : start + EVAL_CHUNK])
            for start in range(0, len(images), EVAL_CHUNK)
        ]
    finally:
        backbone.train(was_training)
    return torch.cat(chunks) if chunks else images.new_zeros((0, dim)).float()


@torch.no_grad()
def test_set_metrics(
    backbone: torch.nn.Module, head: MarginHead, data: DeviceData, dim: int
) -> dict[str, float]:
    """Accuracy and mean loss (margin included) on the WHOLE test set, eval mode; a
    non-finite loss is reported as 0.0 (the accuracy is always finite). The head is in eval
    mode too: heads with running state (AdaFace, CurricularFace, AdaCos) read it without
    updating it from test images, and ElasticFace draws nothing."""
    was_training = head.training
    head.eval()
    try:
        return _test_set_metrics(backbone, head, data, dim)
    finally:
        head.train(was_training)


def _test_set_metrics(
    backbone: torch.nn.Module, head: MarginHead, data: DeviceData, dim: int
) -> dict[str, float]:
    correct = 0
    loss_sum = 0.0
    count = 0
    images, labels = data.test_images, data.test_labels
    for start in range(0, len(labels), EVAL_CHUNK):
        chunk = labels[start : start + EVAL_CHUNK]
        features = embed_eval(backbone, images[start : start + EVAL_CHUNK], dim)
        correct += int((head.plain_logits(features).argmax(1) == chunk).sum())
        loss = F.cross_entropy(head(features, chunk), chunk, reduction="sum")
        loss_sum += float(loss)
        count += len(chunk)
    test_loss = loss_sum / count if math.isfinite(loss_sum) and count else 0.0
    return {"test_acc": correct / count if count else 0.0, "test_loss": test_loss}
