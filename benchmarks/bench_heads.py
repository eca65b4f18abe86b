"""Forward+backward time of our ArcFace head vs pytorch-metric-learning's ArcFaceLoss vs the floor.

Run: python benchmarks/bench_heads.py [--threads N] [--repeats N]

The floor is a plain normalised linear layer + cross-entropy, F.cross_entropy(x̂ Ŵᵀ, y): the
same matrix product and softmax with no margin at all, so "ours / floor" is what the margin costs.
All three get the same weights and batch; each timed call is loss + backward w.r.t. features and
weights. The three are timed in interleaved rounds (so a noisy neighbour hurts them alike), after a
warm-up, and the median is reported. CPU always; CUDA too when available (timed with events).
Timings are printed, never asserted (DESIGN.md §5).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from pytorch_metric_learning.losses import ArcFaceLoss

from bench_timing import interleaved_medians, setup
from marginlab.losses.heads import build_head

SIZES = ((512, 512, 10_000), (256, 2, 10))  # (B, d, C)
S, M2 = 64.0, 0.5  # the ArcFace paper's setting


def _contenders(batch: int, dim: int, classes: int, device: str) -> dict[str, Callable[[], None]]:
    torch.manual_seed(0)
    features = torch.randn(batch, dim, device=device, requires_grad=True)
    labels = torch.randint(0, classes, (batch,), device=device)

    ours = build_head("arcface", dim, classes, s=S, m2=M2).to(device)
    pml = ArcFaceLoss(classes, dim, margin=math.degrees(M2), scale=S).to(device)
    floor_weight = torch.nn.Parameter(ours.weight.detach().clone())
    with torch.no_grad():
        pml.W.copy_(ours.weight.t())  # PML keeps its weights as (d, C)

    def run_ours() -> None:
        ours.compute_loss(features, labels).backward()

    def run_pml() -> None:
        pml(features, labels).backward()

    def run_floor() -> None:
        cos = F.linear(F.normalize(features, dim=1), F.normalize(floor_weight, dim=1))
        F.cross_entropy(cos, labels).backward()

    def fresh(step: Callable[[], None]) -> Callable[[], None]:
        def call() -> None:
            features.grad = None
            ours.weight.grad = pml.W.grad = floor_weight.grad = None
            step()

        return call

    return {"ours": fresh(run_ours), "pml": fresh(run_pml), "floor": fresh(run_floor)}


def measure(batch: int, dim: int, classes: int, device: str, repeats: int) -> dict[str, float]:
    """Median seconds per forward+backward for each contender, interleaved rounds."""
    return interleaved_medians(_contenders(batch, dim, classes, device), device, repeats)


def main() -> None:
    args, devices = setup(__doc__.splitlines()[0])
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, s={S}, m2={M2}")
    if "cuda" in devices:
        print(f"CUDA: {torch.cuda.get_device_name()}")
    header = f"{'device':6} {'B':>5} {'d':>5} {'C':>7} {'ours ms':>9} {'PML ms':>9} {'floor ms':>9}"
    print(header + f" {'PML/ours':>9} {'ours/floor':>11}")
    for device in devices:
        for batch, dim, classes in SIZES:
            large = batch * dim * classes > 1e6
            repeats = args.repeats or (15 if large and device == "cpu" else 100)
            t = measure(batch, dim, classes, device, repeats)
            print(
                f"{device:6} {batch:5d} {dim:5d} {classes:7d} {t['ours'] * 1e3:9.3f} "
                f"{t['pml'] * 1e3:9.3f} {t['floor'] * 1e3:9.3f} "
                f"{t['pml'] / t['ours']:9.2f} {t['ours'] / t['floor']:11.2f}"
            )


if __name__ == "__main__":
    main()
