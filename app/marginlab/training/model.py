"""The model of a run: backbone and margin head initialised from the seed alone, and AdamW.

Class weights start evenly spread on the circle/sphere (`spread_class_weights`): with random
directions two of ten classes often start a few degrees apart and fight for one sector.
Weights are drawn under a forked, seeded RNG, so building a model neither depends on nor
disturbs the global RNG, and every loss of a comparison starts from the same backbone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from marginlab.data.batches import DeviceData
from marginlab.losses.heads import MarginHead, build_head
from marginlab.training.backbones import build_backbone
from marginlab.training.config import RunConfig


def initial_model(config: RunConfig, data: DeviceData) -> tuple[torch.nn.Module, MarginHead]:
    """Backbone and head initialised from the seed alone (a forked RNG: global state untouched).
    The backbone is built first, so every loss of a comparison starts from the same backbone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        backbone = build_backbone(data.image_shape, config.dim)
        head = build_head(config.loss, config.dim, data.num_classes, **config.head_params())
        spread_class_weights(head)
        head.seed_draws(config.seed)  # ElasticFace's margins: their own generator
    return backbone, head


@torch.no_grad()
def spread_class_weights(head: MarginHead) -> None:
    """In 2-D and 3-D, point the class weights (and sub-centres) in evenly spread directions,
    in a random order, keeping each row's norm.

    Why: ten Gaussian directions on a circle often start two classes a few degrees apart, and
    in 2-D the classes then fight over one sector for hundreds of steps. Measured on mnist-toy
    (NormFace, 600 steps): 34 % → 93 % test accuracy for seed 1, 81 % → 90 % for seed 0.
    2-D: 360°/n apart; 3-D: a Fibonacci lattice. Higher d: Gaussian rows are already nearly
    orthogonal, so they are left alone.
    """
    weight = head.weight
    dim = weight.shape[-1]
    if dim not in (2, 3):
        return
    classes = weight.shape[0]
    directions = _even_directions(classes, dim)[torch.randperm(classes)]
    if weight.dim() == 3:
        # Sub-centres (C, K, d) start a few degrees around their class's direction: the head
        # begins like ArcFace and splits a class only where its data asks for it. (Spreading
        # all C·K = 30 of them evenly in 2-D left 12° per sub-centre, less than m = 0.2 rad
        # needs: 35–74 % test accuracy after 600 steps.)
        jitter = 0.05 * torch.randn(weight.shape)
        directions = F.normalize(directions.unsqueeze(1) + jitter, dim=-1)
    norms = weight.norm(dim=-1, keepdim=True)
    weight.copy_(directions * norms)


def _even_directions(count: int, dim: int) -> torch.Tensor:
    if dim == 2:
        angles = torch.arange(count, dtype=torch.float64) * (2 * math.pi / count)
        return torch.stack([angles.cos(), angles.sin()], dim=1).float()
    index = torch.arange(count, dtype=torch.float64) + 0.5
    polar = torch.acos(1 - 2 * index / count)
    azimuth = math.pi * (1 + math.sqrt(5)) * index
    return torch.stack(
        [polar.sin() * azimuth.cos(), polar.sin() * azimuth.sin(), polar.cos()], dim=1
    ).float()


def build_optimizer(
    backbone: torch.nn.Module, head: MarginHead, config: RunConfig, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW; no weight decay on 1-D parameters (BatchNorm, PReLU slopes, biases), as usual."""
    matrices, vectors = [], []
    for module in (backbone, head):
        for parameter in module.parameters():
            (matrices if parameter.dim() > 1 else vectors).append(parameter)
    groups = [
        {"params": matrices, "weight_decay": config.weight_decay, "decayed": True},
        {"params": vectors, "weight_decay": 0.0, "decayed": False},
    ]
    # capturable keeps AdamW's step count on the GPU, so the non-finite guard needs no sync.
    return torch.optim.AdamW(groups, lr=config.lr, capturable=device.type == "cuda", foreach=True)
