"""Forward+backward time of the post-2020 heads against ArcFace's, measured in the same run.

Run: python benchmarks/bench_post2020_heads.py [--threads N] [--repeats N]

Each timed call is a training step's head work: compute_loss (training-mode forward: the running
statistics update, ElasticFace's draws, MagFace's regulariser) + backward w.r.t. features and
weights + after_step. All heads get the same weights and batch; they are timed in interleaved
rounds after a warm-up and the median is reported, with the ratio to ArcFace (s = 64, m2 = 0.5)
as the baseline. Each head runs with its paper preset. CPU always; CUDA too when available.
Timings are printed, never asserted (DESIGN.md §5).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bench_timing import interleaved_medians, setup
from marginlab.losses.heads import build_head
from marginlab.losses.registry import ADAPTIVE_LOSSES, loss_spec

SIZES = ((256, 2, 10), (512, 512, 10_000))  # (B, d, C): the toy and the papers' face setting


def _steps(batch: int, dim: int, classes: int, device: str) -> dict[str, Callable[[], None]]:
    torch.manual_seed(0)
    features = torch.randn(batch, dim, device=device).mul_(5.0).requires_grad_()
    labels = torch.randint(0, classes, (batch,), device=device)
    heads = {"arcface": build_head("arcface", dim, classes, s=64.0, m2=0.5)}
    heads |= {name: build_head(name, dim, classes, **loss_spec(name).paper_preset)
              for name in ADAPTIVE_LOSSES}  # fmt: skip
    weight = heads["arcface"].weight.detach()
    for head in heads.values():
        head.to(device).train()
        head.seed_draws(0)
        with torch.no_grad():
            head.weight.copy_(weight)

    def step_of(head: torch.nn.Module) -> Callable[[], None]:
        def step() -> None:
            features.grad = None
            head.weight.grad = None
            head.compute_loss(features, labels).backward()
            head.after_step(features.detach(), labels)

        return step

    return {name: step_of(head) for name, head in heads.items()}


def measure(batch: int, dim: int, classes: int, device: str, repeats: int) -> dict[str, float]:
    """Median seconds per step for each head, interleaved rounds."""
    return interleaved_medians(_steps(batch, dim, classes, device), device, repeats)


def main() -> None:
    args, devices = setup(__doc__.splitlines()[0])
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}")
    for device in devices:
        for batch, dim, classes in SIZES:
            large = batch * dim * classes > 1e6
            repeats = args.repeats or (9 if large and device == "cpu" else 60)
            t = measure(batch, dim, classes, device, repeats)
            base = t["arcface"]
            print(f"\n{device}  B={batch} d={dim} C={classes}  (ArcFace {base * 1e3:.3f} ms)")
            for name, seconds in t.items():
                print(f"  {name:16} {seconds * 1e3:9.3f} ms   {seconds / base:5.2f}× ArcFace")


if __name__ == "__main__":
    main()
