"""A class on one server: simulated sessions against the training service, and a phase-map
sweep on one core vs all local processes vs a local Ray.

Run: PYTHONPATH=app python benchmarks/bench_classroom.py [--seconds 120] [--shared 20]
     [--private 10] [--private-per-worker 10] [--workers N] [--small] [--phase-steps 100]
     [--skip-sessions] [--skip-sweep] [--no-ray]

Sessions: `--shared` sessions open the Lab's default preset (2-D ArcFace) and press Play; they
follow one shared trainer. `--private` more open it too, press Play and move the margin slider
(each to its own m), which forks each a private trainer (sharing.py); beyond
`--private-per-worker` × workers places they wait in the queue, following the shared run. A
simulated page polls its session every 0.35 s (the Lab's fragment tick) and counts a picture
update when the latest snapshot is a new one; it draws nothing (drawing is the Streamlit
server's cost, measured by bench_app.py). Printed per kind of session: picture updates/s and
steps/s (min / median / max), whether the shared sessions showed the same step at every tick,
and the peak resident memory of the server process and its workers.

Sweep: the phase map (experiments.phase_map, real runs on mnist-toy), 6 s × 6 m × 2 seeds
(`--small`: 3 × 3 × 2), `--phase-steps` steps each without warm-up, timed serially on one core
in this process, through a local process pool (training.sweeps, one process per core) and as
tasks of a local Ray (ray.init(num_cpus=cores); its start-up is timed apart); the ratios are
against the serial sweep of the same run, and the three sweeps' cells must be equal.
Timings are printed, never asserted (DESIGN.md §5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch

from marginlab.experiments.phase_map import phase_map
from marginlab.training.config import default_config
from marginlab.training.run import Run
from marginlab.training.service import TrainingService
from marginlab.training.service.builders import new_run
from marginlab.training.service.sharing import SharingService
from marginlab.training.service.slot import CROWDED_COST_FACTOR, SNAPSHOT_COST_FACTOR
from marginlab.training.sweeps import RayExecutor, sweep_executor, usable_cores

TICK_S = 0.35  # the Lab's fragment interval (ui/live.py)
FULL_GRID = {
    "s_values": (2.0, 4.0, 8.0, 16.0, 32.0, 64.0),
    "m_values": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
}
SMALL_GRID = {"s_values": (4.0, 16.0, 64.0), "m_values": (0.0, 0.25, 0.5)}
APP = str(Path(__file__).resolve().parents[1] / "app")


class Page:
    """One simulated page: what it showed at each tick."""

    def __init__(self, session, kind: str) -> None:
        self.session, self.kind = session, kind
        self.updates = 0
        self.last = None
        self.steps_at_start = 0

    def tick(self) -> int:
        self.session.touch()
        snap = self.session.runs[0].latest_snapshot()
        if snap is not self.last:
            self.updates += 1
            self.last = snap
        return self.session.steps


def _spread(values: list[float]) -> str:
    if not values:
        return "none"
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def engine_baseline(seconds: float) -> float:
    """Steps/s of the same preset trained alone in this process on one thread, now: what one
    core gives at this moment (a shared machine gives less than a quiet one)."""
    torch.set_num_threads(1)
    run = Run(default_config("arcface", 2))
    run.step(3)
    start, taken = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        taken += run.step_for(0.5)
    rate = taken / (time.perf_counter() - start)
    print(f"engine alone, one thread, snapshots every {run.config.snapshot_every} steps: "
          f"{rate:.1f} steps/s")  # fmt: skip
    # CPU time (not wall time: the machine may be shared) of a step and of a live snapshot.
    before = time.thread_time()
    run.step(10)
    step_cpu = (time.thread_time() - before) / 10
    before = time.thread_time()
    for _ in range(5):
        run.step(1)
        run.snapshot()
    snapshot_cpu = (time.thread_time() - before) / 5 - step_cpu
    # A playing slot takes a live snapshot after SNAPSHOT_COST_FACTOR x its cost of training
    # (slot.py), or after CROWDED_COST_FACTOR x once its pages have waited PICTURE_FLOOR_S:
    # one picture update costs (factor + 1) snapshots of CPU.
    for label, factor in (("uncrowded", SNAPSHOT_COST_FACTOR), ("crowded", CROWDED_COST_FACTOR)):
        per_update = (factor + 1) * snapshot_cpu
        steps = (per_update - snapshot_cpu) / step_cpu
        print(f"CPU per step {step_cpu * 1e3:.0f} ms, per live snapshot {snapshot_cpu * 1e3:.0f} "
              f"ms, {label} rule: one core gives {1 / per_update:.1f} trainers >= 1 picture "
              f"update/s at {steps:.1f} steps per update")  # fmt: skip
    return rate


def simulate_class(args: argparse.Namespace) -> None:
    engine = engine_baseline(15.0)
    start = time.perf_counter()
    service = SharingService(
        TrainingService(args.workers), share=True, private_per_worker_limit=args.private_per_worker
    )
    preset = default_config("arcface", 2)
    total = args.shared + args.private
    sessions = [service.create(new_run(preset)) for _ in range(total)]
    print(f"{total} sessions opened in {time.perf_counter() - start:.1f} s "
          f"({len(service.service.workers)} workers)")  # fmt: skip
    for session in sessions:
        session.play()
    movers = sessions[args.shared :]
    for index, session in enumerate(movers):
        session.set_params([preset.with_changes(m2=round(0.25 + 0.01 * index, 3))])
    places = args.private_per_worker * len(service.service.workers)
    deadline = time.monotonic() + 300
    while sum(not s.shared for s in movers) < min(len(movers), places):
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    forked = sum(not s.shared for s in movers)
    print(f"forks: {forked} private, {len(movers) - forked} waiting in the queue "
          f"({time.perf_counter() - start:.1f} s after opening)")  # fmt: skip
    pages = [Page(s, "shared") for s in sessions[: args.shared]] + [
        Page(s, "private" if not s.shared else "waiting") for s in movers
    ]
    for page in pages:
        page.steps_at_start = page.session.steps
        page.last = page.session.runs[0].latest_snapshot()
    peak_rss, same_ticks, ticks = 0, 0, 0
    stop = threading.Event()

    def watch_memory() -> None:
        nonlocal peak_rss
        while not stop.wait(1.0):
            peak_rss = max(peak_rss, service.load().rss_bytes)

    watcher = threading.Thread(target=watch_memory, daemon=True)
    watcher.start()
    began = time.perf_counter()
    while time.perf_counter() - began < args.seconds:
        shown = [page.tick() for page in pages]
        shared_steps = {n for page, n in zip(pages, shown, strict=True) if page.kind == "shared"}
        ticks += 1
        same_ticks += len(shared_steps) <= 1
        time.sleep(TICK_S)
    elapsed = time.perf_counter() - began
    stop.set()
    watcher.join()
    print(f"measured {elapsed:.0f} s, {ticks} ticks of {TICK_S} s")
    for kind in ("shared", "private", "waiting"):
        group = [page for page in pages if page.kind == kind]
        if not group:
            continue
        rates = [page.updates / elapsed for page in group]
        steps = [(page.session.steps - page.steps_at_start) / elapsed for page in group]
        print(f"  {kind:8s} {len(group):2d} sessions: picture updates/s {_spread(rates)}, "
              f"steps/s {_spread(steps)} (min / median / max)")  # fmt: skip
    trainers = {id(page.session.target): page for page in pages if page.kind != "waiting"}
    trained = sum((p.session.steps - p.steps_at_start) / elapsed for p in trainers.values())
    workers = len(service.service.workers)
    print(f"  all {len(trainers)} trainers: {trained:.1f} steps/s = {trained / engine:.2f} x the "
          f"engine alone ({workers} worker{'s' if workers != 1 else ''})")  # fmt: skip
    print(f"  shared sessions showed the same step at {same_ticks} of {ticks} ticks")
    print(f"  peak RSS, server + workers: {peak_rss / 1e9:.2f} GB")
    print(f"  {service.load().line()}")
    service.shutdown()


def sweep(args: argparse.Namespace) -> None:
    grid = {**(SMALL_GRID if args.small else FULL_GRID), "seeds": (0, 1)}
    cells = len(grid["s_values"]) * len(grid["m_values"]) * len(grid["seeds"])
    options = {**grid, "steps": args.phase_steps, "warmup": 0}
    print(f"phase map: {cells} runs of {args.phase_steps} steps, {usable_cores()} usable cores")
    with tempfile.TemporaryDirectory(prefix="bench-classroom-") as folder:
        torch.set_num_threads(1)
        start = time.perf_counter()
        serial = phase_map(cache_dir=Path(folder) / "serial", **options)
        base = time.perf_counter() - start
        print(f"  one core (this process):    {base:7.1f} s  1.00")
        start = time.perf_counter()
        with sweep_executor("local") as executor:
            pooled = phase_map(cache_dir=Path(folder) / "local", executor=executor, **options)
        wall = time.perf_counter() - start
        same = pooled["runs"] == serial["runs"]
        print(f"  local processes ({usable_cores()}):     {wall:7.1f} s  {base / wall:.2f}x"
              f"  same cells: {'yes' if same else 'NO'}")  # fmt: skip
        if args.no_ray:
            return
        try:
            import ray
        except ImportError:
            print("  local Ray: not measured (pip install -e .[cluster])")
            return
        start = time.perf_counter()
        ray.init(num_cpus=usable_cores(), include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": APP}})  # fmt: skip
        started = time.perf_counter() - start
        try:
            start = time.perf_counter()
            on_ray = phase_map(
                cache_dir=Path(folder) / "ray", executor=RayExecutor("local"), **options
            )
            wall = time.perf_counter() - start
        finally:
            ray.shutdown()
        same = on_ray["runs"] == serial["runs"]
        print(f"  local Ray ({usable_cores()} CPUs):        {wall:7.1f} s  {base / wall:.2f}x"
              f"  same cells: {'yes' if same else 'NO'}"
              f"  (+ {started:.1f} s to start Ray)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="measured time of the class")
    parser.add_argument("--shared", type=int, default=20, help="sessions on the preset")
    parser.add_argument("--private", type=int, default=10, help="sessions that fork")
    parser.add_argument("--private-per-worker", type=int, default=10, help="private places")
    parser.add_argument("--workers", type=int, default=None, help="default: cores - 1")
    parser.add_argument("--small", action="store_true", help="phase map 3 x 3 x 2 seeds")
    parser.add_argument("--phase-steps", type=int, default=100, help="steps per phase-map run")
    parser.add_argument("--skip-sessions", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--no-ray", action="store_true", help="leave the Ray sweep out")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bench_classroom: {usable_cores()} usable cores, load average {load:.1f} at start")
    if not args.skip_sessions:
        simulate_class(args)
    if not args.skip_sweep:
        sweep(args)


if __name__ == "__main__":
    main()
