"""What the head benchmarks share: their command line, one timed call (CUDA events on a GPU,
the wall clock on the CPU) and interleaved rounds of several contenders, reported as medians.

Interleaving (A, B, C, A, B, C, ...) makes a noisy neighbour slow every contender alike, so the
ratios between them, measured in the same run, stay honest (DESIGN.md §5: timings are printed
as ratios against a baseline, never asserted).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Mapping

import torch


def time_once(step: Callable[[], None], device: str) -> float:
    """Seconds one call of `step` takes (on CUDA: between two events, after a synchronise)."""
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000.0
    began = time.perf_counter()
    step()
    return time.perf_counter() - began


def interleaved_medians(
    steps: Mapping[str, Callable[[], None]], device: str, repeats: int, warmup: int = 3
) -> dict[str, float]:
    """Median seconds per call of each step, after `warmup` calls each (allocator, kernels,
    caches), over `repeats` interleaved rounds."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    if device == "cuda":
        torch.cuda.synchronize()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(time_once(step, device))
    return {name: statistics.median(values) for name, values in times.items()}


def setup(description: str) -> tuple[argparse.Namespace, list[str]]:
    """Parse --threads and --repeats (0: the script chooses per size), set torch's threads, and
    return the arguments with the devices to measure on: the CPU always, CUDA when present."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=0, help="0: chosen per size")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args, ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
