"""Training engine benchmarks; prints measured numbers (no asserts).

    python benchmarks/bench_training.py            # everything
    python benchmarks/bench_training.py --only a c # some parts

(a) time from start to test accuracy ≥ 95 % (2-D ArcFace) and ≥ 97 % (3-D ArcFace) on
    mnist-toy, default config, median of 3 seeds. Time = the run's own training clock
    (Run.elapsed: steps plus their scheduled snapshots); the full-test-set checks the
    benchmark makes every 50 steps are not counted. Goal ≤ 20 s each.
(b) steps/s of one run and of the 6-loss lock-step comparison; ratio of the comparison's step
    time to the sum of the six single runs' step times (goal ≤ 1.0).
(c) peak RSS of a 6-loss comparison whose snapshot histories are full (goal ≤ 500 MB), in a
    fresh subprocess.
(d) with CUDA: 2-D ArcFace on random data of full-MNIST size, steps/s on CUDA vs CPU.

Timings depend on the machine and on what else runs on it: read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from marginlab.data.batches import to_device
from marginlab.data.datasets import Dataset, load_dataset
from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import default_config
from marginlab.training.run import Run

COMPARE_LOSSES = ("softmax", "normface", "sphereface", "cosface", "arcface", "center")
SEEDS = (0, 1, 2)


def time_to_accuracy(dim: int, target: float, seed: int, data, max_steps: int = 3000):
    """(seconds, steps, accuracy) when the whole-test-set accuracy first reaches `target`,
    checked every 50 steps; seconds is None if it never does within `max_steps`."""
    run = Run(default_config("arcface", dim, device="cpu", seed=seed), data=data)
    accuracy = 0.0
    while run.steps < max_steps:
        run.step(50)
        accuracy = run.evaluate()["test_acc"]
        if accuracy >= target:
            return run.elapsed, run.steps, accuracy
    return None, run.steps, accuracy


def part_a(threads: int) -> None:
    print(f"(a) time to accuracy, ArcFace defaults, CPU, {threads} threads, seeds {SEEDS}")
    data = to_device(load_dataset("mnist-toy"), torch.device("cpu"), 1000)
    for dim, target in ((2, 0.95), (3, 0.97)):
        results = [time_to_accuracy(dim, target, seed, data) for seed in SEEDS]
        for seed, (seconds, steps, accuracy) in zip(SEEDS, results, strict=True):
            shown = "not reached" if seconds is None else f"{seconds:5.1f} s"
            print(f"    {dim}-D seed {seed}: {shown} at step {steps} (test acc {accuracy:.2%})")
        times = [r[0] if r[0] is not None else float("inf") for r in results]
        steps = [r[1] for r in results]
        print(f"    {dim}-D ArcFace ≥ {target:.0%}: median {statistics.median(times):.1f} s, "
              f"median {statistics.median(steps):.0f} steps (goal ≤ 20 s)")  # fmt: skip


def steps_per_second(step, n: int) -> float:
    step(10)  # warm up (first snapshot, allocator, AdamW state)
    start = time.perf_counter()
    step(n)
    return n / (time.perf_counter() - start)


def part_b(threads: int, steps: int = 150) -> None:
    print(f"(b) steps/s, 2-D, default config (snapshot every 25), CPU, {threads} threads")
    data = to_device(load_dataset("mnist-toy"), torch.device("cpu"), 1000)
    single = {}
    for loss in COMPARE_LOSSES:
        run = Run(default_config(loss, 2, device="cpu"), data=data)
        single[loss] = steps_per_second(run.step, steps)
        print(f"    {loss:>10}: {single[loss]:6.1f} steps/s")
    comparison = LockstepComparison(
        [default_config(loss, 2, device="cpu") for loss in COMPARE_LOSSES], data=data
    )
    together = steps_per_second(comparison.step, steps)
    sum_of_singles = sum(1.0 / rate for rate in single.values())
    print(f"    6-loss lock-step: {together:6.1f} steps/s "
          f"(each step advances all six runs)")  # fmt: skip
    print(f"    ratio lock-step step time / sum of six single step times: "
          f"{(1.0 / together) / sum_of_singles:.2f} (goal ≤ 1.0)")  # fmt: skip
    print(f"    ratio to 6 × ArcFace alone: {(1.0 / together) / (6 / single['arcface']):.2f}")


_RSS_CHILD = """
import json, resource, sys, torch
torch.set_num_threads({threads})
from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import default_config
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
configs = [default_config(loss, {dim}, device="cpu", snapshot_every=1)
           for loss in {losses!r}]
comparison = LockstepComparison(configs)
comparison.step(configs[0].history_size)
full = all(len(r.history) == r.history.maxlen for r in comparison)
snapshot_bytes = sum(r.history[-1].nbytes * len(r.history) for r in comparison)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(baseline_kb=baseline, peak_kb=peak, full=full,
                      history_mb=snapshot_bytes / 2**20,
                      snapshots=sum(len(r.history) for r in comparison))))
"""


def part_c(threads: int, dim: int = 2) -> None:
    print(f"(c) peak RSS, 6-loss {dim}-D comparison, histories filled (subprocess)")
    code = _RSS_CHILD.format(threads=threads, dim=dim, losses=COMPARE_LOSSES)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        print("    failed:", done.stderr.strip().splitlines()[-1])
        return
    result = json.loads(done.stdout)
    print(f"    {result['snapshots']} snapshots held (full: {result['full']}), "
          f"{result['history_mb']:.1f} MB of snapshot arrays")  # fmt: skip
    print(f"    RSS after imports {result['baseline_kb'] / 1024:.0f} MB, "
          f"peak {result['peak_kb'] / 1024:.0f} MB (goal ≤ 500 MB)")  # fmt: skip


def part_d(threads: int, steps: int = 200) -> None:
    if not torch.cuda.is_available():
        print("(d) CUDA: not measured (no device)")
        return
    print("(d) 2-D ArcFace on random data of full-MNIST size (60,000 train, 10,000 test)")
    rng = np.random.default_rng(0)
    dataset = Dataset(
        name="mnist-toy",  # any registered name: the data itself is random
        train_images=rng.integers(0, 256, (60_000, 28, 28), dtype=np.uint8),
        train_labels=rng.integers(0, 10, 60_000).astype(np.int64),
        test_images=rng.integers(0, 256, (10_000, 28, 28), dtype=np.uint8),
        test_labels=rng.integers(0, 10, 10_000).astype(np.int64),
        class_names=tuple(str(i) for i in range(10)),
        image_shape=(28, 28),
        source="random",
    )
    rates = {}
    for device in ("cuda", "cpu"):
        data = to_device(dataset, torch.device(device), 1000)
        run = Run(default_config("arcface", 2, device=device), data=data)

        def step(n, run=run, device=device):
            run.step(n)
            if device == "cuda":
                torch.cuda.synchronize()

        rates[device] = steps_per_second(step, steps if device == "cuda" else steps // 4)
        print(f"    {device}: {rates[device]:7.1f} steps/s")
    print(f"    CUDA / CPU: {rates['cuda'] / rates['cpu']:.1f}×  ({torch.cuda.get_device_name()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices="abcd", default=list("abcd"))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} CPU threads")
    parts = {"a": part_a, "b": part_b, "c": part_c, "d": part_d}
    for name in args.only:
        parts[name](args.threads)


if __name__ == "__main__":
    main()
