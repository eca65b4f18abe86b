"""The GPU path, measured: one prepared check for a machine with a CUDA device (< 5 min, H100/H200).

    python benchmarks/bench_gpu.py           # everything, about 3 minutes
    python benchmarks/bench_gpu.py --quick   # fewer steps and repeats, about a minute

Each item prints its numbers beside a baseline measured in the same run:
  CUDA tests   `pytest -m cuda` (the tests that skip without CUDA): passed of selected
  heads        our ArcFace head, forward+backward, vs pytorch-metric-learning's ArcFaceLoss and
               the plain normalised-linear floor, B=512, d=512, C=10,000 and 100,000
  2-D ArcFace  steps/s of one run (default config, snapshot every 25) on CUDA vs the CPU
  lock-step    six losses in lock-step: the engine's loop vs batched (gpu_lockstep.py: vmap
               over the stacked backbones) vs one run; the faster one is named
  service      one run in a training-service worker on the GPU (step(n), Play then Pause) vs
               the same run in this process
  epoch        seconds for one epoch-equivalent (60,000 images), GPU vs the CPU at its rate
  memory       peak GPU memory per item vs the data's own size on the device
  sync         host synchronisations inside training steps, counted with
               torch.cuda.set_sync_debug_mode("warn"), and steps/s of the sync-free guard vs the
               checked guard that reads the device every step

No download: the shipped mnist-toy training images, repeated with a different 1-2 pixel shift
per copy, stand in for full MNIST's 60,000 (the output says so). Without a CUDA device every
item prints "not measured: no CUDA device" and the script exits 0 at once.
Timings are printed, never asserted (DESIGN.md §5).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ITEMS = ("CUDA tests", "heads", "2-D ArcFace", "lock-step", "service", "epoch", "memory", "sync")
LOSSES = ("softmax", "normface", "sphereface", "cosface", "arcface", "center")
FULL_MNIST = 60_000
REPO = Path(__file__).resolve().parents[1]
QUIET = 10_000  # snapshot_every that keeps snapshots (host reads by design) out of a timing


def stand_in_data(device: torch.device):
    """mnist-toy's training images repeated (each copy shifted by 1-2 pixels) to 60,000."""
    from marginlab.data.batches import to_device
    from marginlab.data.datasets import Dataset, load_dataset

    toy = load_dataset("mnist-toy")
    shifts = [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1), (2, 1), (-1, 2), (1, -2), (-2, -1)]
    copies, labels, total = [], [], 0
    for dy, dx in itertools.cycle(shifts):
        if total >= FULL_MNIST:
            break
        copies.append(np.roll(toy.train_images, (dy, dx), axis=(1, 2)))
        labels.append(toy.train_labels)
        total += len(toy.train_labels)
    dataset = Dataset(
        name="mnist-toy",
        train_images=np.concatenate(copies)[:FULL_MNIST],
        train_labels=np.concatenate(labels)[:FULL_MNIST],
        test_images=np.array(toy.test_images),
        test_labels=np.array(toy.test_labels),
        class_names=toy.class_names,
        image_shape=toy.image_shape,
        source=f"mnist-toy ({len(toy.train_labels):,} training images) repeated and shifted",
    )
    return to_device(dataset, device, 1000), len(toy.train_labels)


def wait(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rate(step: Callable[[int], None], steps: int, device: torch.device) -> float:
    """Steps per second after a warm-up, waiting for the device at both ends."""
    step(5)
    wait(device)
    start = time.perf_counter()
    step(steps)
    wait(device)
    return steps / (time.perf_counter() - start)


class Bench:
    """The items, in order. `device` is CUDA for real; a CPU device (with `counts` made small)
    walks every code path without measuring anything that matters."""

    def __init__(self, quick: bool, device: torch.device) -> None:
        self.device = device
        self.counts = {  # steps or repeats per item
            "heads": 10 if quick else 50,
            "single": 100 if quick else 400,
            "cpu": 15 if quick else 60,
            "lockstep": 50 if quick else 200,
            "epoch": FULL_MNIST // 128,
            "guard": 100 if quick else 300,
            "play_seconds": 2 if quick else 5,
        }
        self.sizes = (10_000, 100_000)  # the heads' C
        self.data, toy_size = stand_in_data(device)
        self.data_mb = (self.data.train_images.nbytes + self.data.test_images.nbytes) / 2**20
        self.peaks: dict[str, float] = {}
        self.cpu_rate = 0.0
        self.name = torch.cuda.get_device_name() if device.type == "cuda" else str(device)
        print(f"data: full MNIST is not downloaded; {FULL_MNIST:,} images from the shipped subset")
        print(f"      ({toy_size:,} mnist-toy training images, each copy shifted 1-2 px) stand in")

    def peak_mb(self, reset: bool = False) -> float:
        if self.device.type != "cuda":
            return 0.0
        peak = torch.cuda.max_memory_allocated() / 2**20
        if reset:
            torch.cuda.reset_peak_memory_stats()
        return peak

    def config(self, loss: str, **changes):
        from marginlab.training.config import default_config

        return default_config(loss, 2, device=self.device.type, **changes)

    def cuda_tests(self) -> None:
        # Only the files that hold CUDA tests: collecting the others imports the app's
        # packages (streamlit, plotly, playwright), which a bare GPU machine may lack.
        files = [
            str(path.relative_to(REPO))
            for path in sorted((REPO / "tests").glob("test_*.py"))
            if "pytest.mark.cuda" in path.read_text()
        ]
        command = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider"]
        start = time.perf_counter()
        try:
            done = subprocess.run(
                command + files, cwd=REPO, capture_output=True, text=True, timeout=240
            )
        except subprocess.TimeoutExpired:
            print("CUDA tests: stopped after 240 s (pytest -m cuda)")
            return
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
        summary = lines[-1].strip("= ") if lines else done.stderr.strip()[-200:]
        seconds = time.perf_counter() - start
        print(f"CUDA tests: {summary} (pytest -m cuda, exit {done.returncode}, {seconds:.0f} s)")
        for line in failures:
            print(f"CUDA tests:   {line[:180]}")

    def heads(self) -> None:
        try:
            from bench_heads import measure
        except ImportError as error:  # a bare GPU machine: carry the wheel (README)
            print(f"heads: not measured: {error} (carry it as a wheel, benchmarks/README.md)")
            return
        for classes in self.sizes:
            self.peak_mb(reset=True)
            t = measure(512, 512, classes, self.device.type, self.counts["heads"])
            ours, pml, floor = (t[name] * 1e3 for name in ("ours", "pml", "floor"))
            print(
                f"heads C={classes:,}: ours {ours:.3f} ms, PML {pml:.3f} ms, floor {floor:.3f} "
                f"ms; PML/ours {pml / ours:.2f}×, ours/floor {ours / floor:.2f}×"
            )
            self.peaks[f"heads C={classes:,}"] = self.peak_mb()

    def single_run(self) -> None:
        from marginlab.data.batches import to_device
        from marginlab.training.run import Run

        self.peak_mb(reset=True)
        run = Run(self.config("arcface"), data=self.data)
        fast = rate(run.step, self.counts["single"], self.device)
        self.peaks["2-D ArcFace"] = self.peak_mb()
        torch.set_num_threads(os.cpu_count() or 1)
        cpu = torch.device("cpu")
        data = to_device(self.data.dataset, cpu, 1000)
        cpu_run = Run(self.config("arcface").with_changes(device="cpu"), data=data)
        self.cpu_rate = rate(cpu_run.step, self.counts["cpu"], cpu)
        threads = torch.get_num_threads()
        print(
            f"2-D ArcFace: {fast:.0f} steps/s on {self.name}, {self.cpu_rate:.1f} steps/s on "
            f"{threads} CPU threads: {fast / self.cpu_rate:.1f}×"
        )

    def lockstep(self) -> None:
        from gpu_lockstep import StackedLockstep
        from marginlab.training.comparison import LockstepComparison
        from marginlab.training.run import Run

        steps = self.counts["lockstep"]
        configs = [self.config(loss, snapshot_every=QUIET) for loss in LOSSES]
        single = rate(Run(configs[4], data=self.data).step, steps, self.device)
        self.peak_mb(reset=True)
        loop = rate(LockstepComparison(configs, data=self.data).step, steps, self.device)
        self.peaks["lock-step loop"] = self.peak_mb(reset=True)
        stacked = StackedLockstep(LockstepComparison(configs, data=self.data))
        batched = rate(stacked.step, steps, self.device)
        self.peaks["lock-step batched"] = self.peak_mb()
        print(
            f"lock-step (6 losses, steps only): loop {loop:.0f}, batched {batched:.0f} steps/s; "
            f"one ArcFace run {single:.0f} steps/s"
        )
        print(
            f"lock-step: batched/loop {batched / loop:.2f}×; a lock-step costs {single / loop:.1f}"
            f" single steps looped, {single / batched:.1f} batched; faster: "
            + ("batched" if batched > loop else "loop")
        )
        epoch_steps = FULL_MNIST // configs[0].batch_size
        print(
            f"epoch lock-step: {FULL_MNIST:,} images ({epoch_steps} steps, no snapshots) in "
            f"{epoch_steps / loop:.1f} s looped, {epoch_steps / batched:.1f} s batched"
        )

    def service(self) -> None:
        """One 2-D ArcFace run in a service worker on the device, against the same run in
        this process: `step(n)` through the pipe, and Play for a few seconds, then Pause."""
        try:
            from marginlab.training.service import TrainingService
            from marginlab.training.service.builders import new_run
        except ImportError as error:
            print(f"service: not available: {error}")
            return
        from marginlab.training.run import Run

        steps = self.counts["single"]
        config = self.config("arcface")
        here = rate(Run(config).step, steps, self.device)  # the worker's data: mnist-toy too
        service = TrainingService(workers=1)
        try:
            handle = service.create(new_run(config))
            handle.step(5)
            start = time.perf_counter()
            handle.step(steps)
            stepped = steps / (time.perf_counter() - start)
            before = handle.steps
            start = time.perf_counter()
            handle.play()
            time.sleep(self.counts["play_seconds"])
            played = (handle.pause() - before) / (time.perf_counter() - start)
        finally:
            service.shutdown()
        print(
            f"service (1 worker, {self.name}): step({steps}) {stepped:.0f} steps/s, Play "
            f"{played:.0f} steps/s; the same run in this process {here:.0f} steps/s "
            f"({played / here:.2f}× while playing)"
        )

    def epoch(self) -> None:
        from marginlab.training.run import Run

        run = Run(self.config("arcface"), data=self.data)
        steps = self.counts["epoch"]
        run.step(5)
        wait(self.device)
        start = time.perf_counter()
        run.step(steps)
        wait(self.device)
        seconds = time.perf_counter() - start
        cpu = steps / self.cpu_rate
        print(
            f"epoch: {steps * run.config.batch_size:,} images ({steps} steps of "
            f"{run.config.batch_size}, snapshots every 25) in {seconds:.1f} s on {self.name}; "
            f"the CPU at its measured rate: {cpu:.0f} s ({cpu / seconds:.0f}×)"
        )

    def memory(self) -> None:
        for name, peak in self.peaks.items():
            data = f"data on the device {self.data_mb:.0f} MB"
            print(f"memory {name}: peak {peak:.0f} MB allocated ({data})")

    def sync(self) -> None:
        from marginlab.training.run import Run

        if self.device.type == "cuda":
            for loss in ("arcface", "sphereface", "center", "subcenter-arcface"):
                run = Run(self.config(loss, snapshot_every=QUIET), data=self.data)
                run.step(2)
                steps = FULL_MNIST // run.config.batch_size + 20  # crosses an epoch boundary
                syncs, at_epoch_start = count_syncs(run, steps)
                print(
                    f"sync {loss}: {syncs} host syncs in {steps} steps "
                    f"({at_epoch_start} of them in steps that began an epoch)"
                )
        rates = {}
        for sync_free in (True, False):
            run = Run(self.config("arcface"), data=self.data)
            run.sync_free_guard = sync_free
            rates[sync_free] = rate(run.step, self.counts["guard"], self.device)
        print(
            f"sync guard: sync-free {rates[True]:.0f} steps/s, checked (reads the device every "
            f"step) {rates[False]:.0f} steps/s: {rates[True] / rates[False]:.2f}×"
        )

    def all(self) -> None:
        self.cuda_tests()
        self.heads()
        self.single_run()
        self.lockstep()
        self.service()
        self.epoch()
        self.memory()
        self.sync()


def count_syncs(run, steps: int) -> tuple[int, int]:
    """Synchronising CUDA calls inside `steps` steps, and how many fell in epoch-start steps."""
    total = at_epoch_start = 0
    epoch = getattr(getattr(run, "sampler", None), "epoch", None)  # a run's sampler, if any
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        for _ in range(steps):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                run.step(1)
            found = sum("synchroniz" in str(w.message) for w in caught)
            total += found
            now = getattr(getattr(run, "sampler", None), "epoch", None)
            at_epoch_start += found if now != epoch else 0
            epoch = now
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return total, at_epoch_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    args = parser.parse_args()
    print(f"torch {torch.__version__}")
    if not torch.cuda.is_available():
        for item in ITEMS:
            print(f"{item}: not measured: no CUDA device")
        return
    # marginlab from this checkout, also where it is not pip-installed (a bare GPU machine);
    # the pytest subprocess inherits it.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "app"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    sys.path.insert(0, str(REPO / "app"))
    started = time.perf_counter()
    Bench(args.quick, torch.device("cuda")).all()
    print(f"total: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
