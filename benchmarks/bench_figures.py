"""How fast the geometry pictures are built, and how big they are on the wire.

Run: python benchmarks/bench_figures.py [--threads N] [--repeats N]

Measures, for 10 classes in 3-D (a live "sphere" tab of the Lab page):
- building the sphere figure with 10,000 points from arrays (goal ≤ 50 ms);
- its JSON size, len(fig.to_json()) (goal ≤ 1.5 MB);
- recomputing what an s/m slider change redraws: the icosphere face regions and the
  target-logit curves (goal ≤ 50 ms), and, for information, rebuilding both figures whole;
- the same for 2-D (circle view, 10,000 points) and the finer mesh used for thin bands.
Medians of repeated runs after a warm-up. Numbers are printed, never asserted (DESIGN.md §5).

`--threads` sets torch's intra-op threads (default 1, as the app runs: on a shared 2-core
machine a second thread mostly waits for the busy other core; see the note it prints).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from marginlab.figures import circle_figure, sphere_figure, target_logit_figure
from marginlab.figures.curves import THETA_DEG
from marginlab.geometry.regions import region_labels, sphere_face_labels
from marginlab.losses.margins import target_logit_np

N_POINTS, N_CLASSES = 10_000, 10
GOAL_MS, GOAL_BYTES = 50.0, 1_500_000


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: caches (icosphere), imports, allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _spread_weights(dim: int) -> np.ndarray:
    """10 well-spread unit directions (2-D: the 36° ring; 3-D: a Fibonacci sphere)."""
    k = np.arange(N_CLASSES)
    if dim == 2:
        phi = 2 * np.pi * k / N_CLASSES
        return np.stack([np.cos(phi), np.sin(phi)], 1)
    z = 1 - 2 * (k + 0.5) / N_CLASSES
    phi = np.pi * (3 - np.sqrt(5)) * k
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)


def _data(dim: int):
    rng = np.random.default_rng(0)
    w = _spread_weights(dim)
    y = rng.integers(0, N_CLASSES, N_POINTS)
    x = w[y] + 0.25 * rng.normal(size=(N_POINTS, dim))
    return x, y, w


def _row(name: str, value: float, goal: float | None, unit: str) -> None:
    verdict = "" if goal is None else ("  ok" if value <= goal else "  OVER GOAL")
    goal_text = "" if goal is None else f"(goal ≤ {goal:g} {unit})"
    print(f"{name:<58} {value:>10.1f} {unit:<3} {goal_text}{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reps = args.repeats
    margin = {"loss": "arcface", "s": 30.0, "m2": 0.3}
    print(f"torch threads: {torch.get_num_threads()}, repeats: {reps} (medians)\n")

    x3, y3, w3 = _data(3)
    build = _median_ms(lambda: sphere_figure(x3, y3, w3, **margin), reps)
    fig = sphere_figure(x3, y3, w3, **margin)
    size = len(fig.to_json())
    _row("3-D sphere figure, 10k points, 5,120 faces: build", build, GOAL_MS, "ms")
    _row("3-D sphere figure: len(fig.to_json())", size / 1e3, GOAL_BYTES / 1e3, "kB")
    _row("3-D sphere figure: to_json()", _median_ms(fig.to_json, reps), None, "ms")

    cos = np.cos(np.radians(THETA_DEG))

    def slider_change(m2: list[float] = [0.3]) -> None:  # noqa: B006 - a counter on purpose
        m2[0] = 0.5 if m2[0] == 0.3 else 0.3  # a new value each time: nothing cached
        sphere_face_labels(w3, loss="arcface", s=30.0, m2=m2[0])
        target_logit_np(cos, loss="arcface", m2=m2[0])

    _row(
        "s/m change, 3-D: face regions + target-logit curve",
        _median_ms(slider_change, reps),
        GOAL_MS,
        "ms",
    )

    def redraw_both() -> None:
        sphere_figure(x3, y3, w3, loss="arcface", s=30.0, m2=0.5)
        target_logit_figure({"loss": "arcface", "m2": 0.5}, theta_y=np.zeros(N_POINTS))

    _row(
        "s/m change, 3-D: rebuild sphere + target-logit figures",
        _median_ms(redraw_both, reps),
        None,
        "ms",
    )

    fine = {**margin, "m2": 0.05}  # thin band: 5 subdivisions (20,480 faces)
    _row(
        "3-D sphere, m = 0.05 (20,480 faces): build",
        _median_ms(lambda: sphere_figure(x3, y3, w3, **fine), reps),
        None,
        "ms",
    )
    _row(
        "3-D sphere, m = 0.05: len(fig.to_json())",
        len(sphere_figure(x3, y3, w3, **fine).to_json()) / 1e3,
        GOAL_BYTES / 1e3,
        "kB",
    )

    x2, y2, w2 = _data(2)
    _row(
        "2-D circle figure, 10k points (Scattergl): build",
        _median_ms(lambda: circle_figure(x2, y2, w2, **margin), reps),
        None,
        "ms",
    )
    _row(
        "2-D circle figure: len(fig.to_json())",
        len(circle_figure(x2, y2, w2, **margin).to_json()) / 1e3,
        None,
        "kB",
    )
    circle = np.stack([np.cos(np.linspace(0, 6.28, 3600)), np.sin(np.linspace(0, 6.28, 3600))], 1)
    _row(
        "s/m change, 2-D: circle regions (3,600 directions)",
        _median_ms(lambda: region_labels(circle, w2, **margin), reps),
        None,
        "ms",
    )

    if args.threads == 1:
        torch.set_num_threads(2)
        two = _median_ms(slider_change, reps)
        print(
            f"\nnote: the same s/m change with 2 torch threads: {two:.1f} ms (on a busy 2-core "
            "machine the thread pool waits for the other core; the app uses 1 thread)"
        )


if __name__ == "__main__":
    main()
