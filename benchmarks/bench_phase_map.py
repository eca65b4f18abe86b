"""What the (s, m) phase map measures, per cell, and what a sweep costs on this machine.

Run: python benchmarks/bench_phase_map.py [--loss arcface] [--dim 2] [--s 1,4,16,64]
     [--m 0,0.25,0.5,0.8] [--seeds 0,1] [--steps 300] [--warmup 200] [--threads 1]

Sweeps the grid with experiments.phase_map (real runs on mnist-toy, in a fresh temporary cache
unless --cache is given), then prints per cell the phase, the mean test accuracy ± half the
seeds' spread, the mean probability of the right class (p_true) and the share of test images
that meet the margin, and the CPU and wall time of the sweep. Timings are printed, never
asserted (DESIGN.md §5).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from marginlab.experiments.phase_map import (
    DEFAULT_M,
    DEFAULT_S,
    DEFAULT_SEEDS,
    DEFAULT_STEPS,
    LAB_WARMUP,
    MARGIN_OF_LOSS,
    margin_tick,
    phase_map,
)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", default="arcface", choices=list(MARGIN_OF_LOSS))
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--s", default=",".join(f"{v:g}" for v in DEFAULT_S))
    parser.add_argument("--m", default="", help="default: the loss's default grid")
    parser.add_argument("--seeds", default=",".join(str(v) for v in DEFAULT_SEEDS))
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--warmup", type=int, default=LAB_WARMUP)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, help="a cache folder to reuse (default: fresh)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    margin_name = MARGIN_OF_LOSS[args.loss]
    m_values = _floats(args.m) or list(DEFAULT_M[margin_name])
    seeds = [int(v) for v in args.seeds.split(",")]
    print(
        f"{args.loss}, {args.dim}-D, mnist-toy: {args.steps} steps per run, margin warm-up "
        f"{args.warmup} steps, seeds {seeds}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    start, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as fresh:
        result = phase_map(
            args.loss,
            args.dim,
            steps=args.steps,
            warmup=args.warmup,
            s_values=_floats(args.s),
            m_values=m_values,
            seeds=seeds,
            cache_dir=args.cache or Path(fresh),
            progress=lambda done, total, text: print(f"  {done}/{total} {text}", flush=True),
        )
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    runs = len(seeds) * len(result["s_values"]) * len(result["m_values"])
    print(
        f"\n{runs} runs: {cpu:.0f} s CPU ({cpu / runs:.1f} s a run), {wall:.0f} s wall "
        f"(load average {load:.1f} on {os.cpu_count()} CPUs)\n"
    )
    print(
        f"{margin_name:>12} "
        + "".join(f"{'s = ' + format(s, 'g'):>34}" for s in result["s_values"])
    )
    for i, m in enumerate(result["m_values"]):
        row = []
        for cell in result["cells"][i]:
            row.append(
                f"{cell['outcome']:>16} {100 * cell['accuracy']:3.0f}±{50 * cell['spread']:2.0f}% "
                f"p{cell['p_true']:.2f} mm{cell['margin_met']:.2f}"
            )
        print(f"{margin_tick(margin_name, m):>12} " + "".join(f"{r:>34}" for r in row))


if __name__ == "__main__":
    main()
