"""Time of the default open-set face experiment on CPU, and what it measures per loss.

Run: python benchmarks/bench_faces.py [--seeds 0,1,2] [--steps N] [--threads N] [--no-augment]

Trains the six losses in lock-step on 30 Olivetti people (faces.run_open_set with its defaults)
and verifies pairs of the 10 held-out people: prints the wall time of each seed and, per loss,
AUC, EER and TAR at FAR = 1 %, then ArcFace − softmax per seed (the same pairs, the same batches,
the same initial weights: a paired difference). With several seeds it also prints the mean
difference. The machine's load average is printed too: on a shared machine it explains slow
times. Timings are printed, never asserted (DESIGN.md §5).

Data: ../shared/data (the reference copy beside the repository) when present, else the usual
cache (downloads Olivetti, 1.4 MB, on first use).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from marginlab.experiments.faces import FACE_LOSSES, OPEN_SET_DIM, OPEN_SET_STEPS, run_open_set

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", default=",".join(FACE_LOSSES))
    parser.add_argument("--seeds", default="0", help="comma-separated; each is a new split")
    parser.add_argument("--steps", type=int, default=OPEN_SET_STEPS)
    parser.add_argument("--dim", type=int, default=OPEN_SET_DIM)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    return parser.parse_args()


def _one_seed(args: argparse.Namespace, losses: list[str], seed: int, data_home) -> dict:
    start, cpu_start = time.perf_counter(), time.process_time()
    reports = run_open_set(
        losses,
        dim=args.dim,
        steps=args.steps,
        seed=seed,
        augment=args.augment,
        data_home=data_home,
        device="cpu",
    )
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    # CPU time is what a quiet machine's wall time would be at one thread; on a busy one the
    # wall time grows with the load average, the CPU time much less.
    print(
        f"\nseed {seed}: {seconds:.1f} s wall, {cpu:.1f} s CPU for {len(losses)} losses x "
        f"{args.steps} steps (load average {load:.1f} on {os.cpu_count()} CPUs)"
    )
    print(f"  {'loss':<11} {'AUC':>6} {'EER':>6} {'TAR@1%':>7} {'closed-set acc':>15}")
    for name, report in reports.items():
        print(
            f"  {name:<11} {report.auc:6.3f} {report.eer:6.3f} {report.tar_at_far[0.01]:7.3f} "
            f"{report.meta['closed_set_test_acc']:15.3f}"
        )
    return reports


def main() -> None:
    args = _arguments()
    if args.threads:
        torch.set_num_threads(args.threads)
    losses = [loss.strip() for loss in args.losses.split(",") if loss.strip()]
    seeds = [int(seed) for seed in args.seeds.split(",")]
    data_home = SHARED_DATA if SHARED_DATA.is_dir() else None
    print(
        f"open-set Olivetti: 30 people trained, 10 verified; d = {args.dim}, "
        f"{args.steps} steps, augmentation {'on' if args.augment else 'off'}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    gaps: dict[str, list[float]] = {"auc": [], "eer": [], "tar": []}
    for seed in seeds:
        reports = _one_seed(args, losses, seed, data_home)
        if "arcface" in reports and "softmax" in reports:
            arc, soft = reports["arcface"], reports["softmax"]
            gaps["auc"].append(arc.auc - soft.auc)
            gaps["eer"].append(arc.eer - soft.eer)
            gaps["tar"].append(arc.tar_at_far[0.01] - soft.tar_at_far[0.01])
            print(
                f"  arcface - softmax: AUC {gaps['auc'][-1]:+.3f}, EER {gaps['eer'][-1]:+.3f}, "
                f"TAR@1% {gaps['tar'][-1]:+.3f}"
            )
    if len(gaps["auc"]) > 1:
        means = {name: statistics.fmean(values) for name, values in gaps.items()}
        wins = sum(gap > 0 for gap in gaps["auc"])
        print(
            f"\nmean arcface - softmax over {len(gaps['auc'])} seeds: AUC {means['auc']:+.3f} "
            f"(arcface higher in {wins}), EER {means['eer']:+.3f}, TAR@1% {means['tar']:+.3f}"
        )


if __name__ == "__main__":
    main()
