"""Time of the default open-set face experiment on CPU, and what it measures per loss; with
--sweep, ArcFace against softmax over several settings and seeds.

Run: python benchmarks/bench_faces.py [--seeds 0,1,2] [--steps N] [--threads N] [--no-augment]
     [--s S] [--m2 M] [--train-people N]
     python benchmarks/bench_faces.py --sweep [--seeds 0,1,2,3,4] [--only name,...] [--jsonl F]
     python benchmarks/bench_faces.py --push [--steps 600]

Trains the losses in lock-step on 30 Olivetti people (faces.run_open_set with its defaults)
and verifies pairs of the 10 held-out people: prints the wall time of each seed and, per loss,
AUC, EER and TAR at FAR = 1 %, then ArcFace − softmax per seed (the same pairs, the same batches,
the same initial weights: a paired difference). With several seeds it also prints the mean
difference, its standard deviation and in how many seeds ArcFace was better. The machine's load
average is printed too: on a shared machine it explains slow times. Timings are printed, never
asserted (DESIGN.md §5).

--sweep trains softmax and ArcFace only, for every setting in SETTINGS (embedding size, steps,
s, m, augmentation, training people), and ends with one summary line per setting; --jsonl
appends every seed's numbers to a file (benchmarks/README.md quotes them).

--push follows one softmax run on the 30 training people: every 50 steps the cross-entropy of
the training faces (eval mode, no augmentation), their accuracy, mean feature length ‖x‖, mean
angle θ_y to their own weight and mean ‖W‖ — does softmax stop pushing once they are separated?

Data: ../shared/data (the reference copy beside the repository) when present, else the usual
cache (downloads Olivetti, 1.4 MB, on first use).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from marginlab.experiments.faces import (
    FACE_LOSSES,
    OPEN_SET_DIM,
    OPEN_SET_STEPS,
    OPEN_SET_TRAIN_PEOPLE,
    open_set_config,
    run_open_set,
)
from marginlab.geometry.angles import target_angles

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# What --sweep measures: each setting changes one thing of the default (d = 32, 300 steps,
# s = 30, m = 0.5, augmentation on, 30 training people).
DEFAULT_SETTING: dict[str, Any] = {
    "dim": OPEN_SET_DIM,
    "steps": OPEN_SET_STEPS,
    "s": 30.0,
    "m2": 0.5,
    "augment": True,
    "train_people": OPEN_SET_TRAIN_PEOPLE,
}
SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "d=128": {"dim": 128},
    "d=8": {"dim": 8},
    "600 steps": {"steps": 600},
    "s=64": {"s": 64.0},
    "m=0.3": {"m2": 0.3},
    "no augmentation": {"augment": False},
    "20 people": {"train_people": 20},
}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", default=",".join(FACE_LOSSES))
    parser.add_argument("--seeds", default="0", help="comma-separated; each is a new split")
    parser.add_argument("--steps", type=int, default=OPEN_SET_STEPS)
    parser.add_argument("--dim", type=int, default=OPEN_SET_DIM)
    parser.add_argument("--s", type=float, default=DEFAULT_SETTING["s"])
    parser.add_argument("--m2", type=float, default=DEFAULT_SETTING["m2"], help="ArcFace m")
    parser.add_argument("--train-people", type=int, default=OPEN_SET_TRAIN_PEOPLE)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    parser.add_argument("--sweep", action="store_true", help="softmax vs ArcFace, all SETTINGS")
    parser.add_argument("--only", default="", help="with --sweep: these settings only")
    parser.add_argument("--jsonl", type=Path, help="append every seed's numbers to this file")
    parser.add_argument("--push", action="store_true", help="follow one softmax run")
    return parser.parse_args()


def _one_seed(losses: list[str], setting: dict[str, Any], seed: int, data_home) -> dict:
    start, cpu_start = time.perf_counter(), time.process_time()
    reports = run_open_set(
        losses,
        n_train_people=setting["train_people"],
        dim=setting["dim"],
        steps=setting["steps"],
        seed=seed,
        augment=setting["augment"],
        data_home=data_home,
        device="cpu",
        s=setting["s"],
        m2=setting["m2"],
    )
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    # CPU time is what a quiet machine's wall time would be at one thread; on a busy one the
    # wall time grows with the load average, the CPU time much less.
    print(
        f"\nseed {seed}: {seconds:.1f} s wall, {cpu:.1f} s CPU for {len(losses)} losses x "
        f"{setting['steps']} steps (load average {load:.1f} on {os.cpu_count()} CPUs)"
    )
    print(f"  {'loss':<11} {'AUC':>6} {'EER':>6} {'TAR@1%':>7} {'closed-set acc':>15}")
    for name, report in reports.items():
        print(
            f"  {name:<11} {report.auc:6.3f} {report.eer:6.3f} {report.tar_at_far[0.01]:7.3f} "
            f"{report.meta['closed_set_test_acc']:15.3f}"
        )
    return reports


def _metrics(report) -> dict[str, float]:
    return {"auc": report.auc, "eer": report.eer, "tar": report.tar_at_far[0.01]}


def _measure(
    name: str, losses: list[str], setting: dict[str, Any], seeds: list[int], args
) -> dict[str, Any]:
    """Every seed of one setting; returns the paired ArcFace − softmax gaps (if both ran)."""
    data_home = SHARED_DATA if SHARED_DATA.is_dir() else None
    print(
        f"\n=== {name}: {setting['train_people']} people trained, "
        f"{40 - setting['train_people']} verified; d = {setting['dim']}, {setting['steps']} "
        f"steps, s = {setting['s']:g}, ArcFace m = {setting['m2']:g}, augmentation "
        f"{'on' if setting['augment'] else 'off'}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    gaps: dict[str, list[float]] = {"auc": [], "eer": [], "tar": []}
    for seed in seeds:
        reports = _one_seed(losses, setting, seed, data_home)
        numbers = {loss: _metrics(report) for loss, report in reports.items()}
        if args.jsonl:
            with args.jsonl.open("a") as out:
                out.write(json.dumps({"setting": name, **setting, "seed": seed, **numbers}) + "\n")
        if "arcface" in numbers and "softmax" in numbers:
            for key in gaps:
                gaps[key].append(numbers["arcface"][key] - numbers["softmax"][key])
            print(
                f"  arcface - softmax: AUC {gaps['auc'][-1]:+.3f}, EER {gaps['eer'][-1]:+.3f}, "
                f"TAR@1% {gaps['tar'][-1]:+.3f}"
            )
    return gaps


def _summary(name: str, gaps: dict[str, list[float]]) -> str:
    """Mean ± sd of the paired gaps and how often ArcFace was better (lower EER is better)."""
    n = len(gaps["auc"])
    parts = []
    for key, better in (("auc", 1), ("eer", -1), ("tar", 1)):
        values = gaps[key]
        sd = statistics.stdev(values) if n > 1 else 0.0
        wins = sum(better * gap > 0 for gap in values)
        parts.append(f"{key.upper()} {statistics.fmean(values):+.3f} ± {sd:.3f} ({wins}/{n})")
    return f"{name:<16} " + ", ".join(parts)


def softmax_push(steps: int, seed: int, data_home) -> None:
    """What softmax does to the training faces once they are separated (see the module doc)."""
    setup = open_set_config(("softmax",), steps=steps, seed=seed, data_home=data_home)
    comparison = setup.comparison(augment=True)
    run = comparison.runs["softmax"]
    images, labels = np.array(setup.dataset.train_images), np.array(setup.dataset.train_labels)
    print(f"softmax, {setup.configs[0].dim}-D, 30 Olivetti people, seed {seed}, {steps} steps")
    print(f"{'step':>5} {'train loss':>11} {'acc':>6} {'mean |x|':>9} {'θ_y °':>6} {'|W|':>5}")
    while run.steps < steps:
        comparison.step(min(50, steps - run.steps))
        features = run.embed(images)
        weights = run.head.class_weights().float().cpu().numpy()
        with torch.no_grad():
            logits = run.head.plain_logits(torch.from_numpy(features))
            loss = float(F.cross_entropy(logits.double(), torch.from_numpy(labels)))
        accuracy = float((logits.argmax(1).numpy() == labels).mean())
        theta = np.degrees(target_angles(features, labels, weights).mean())
        print(
            f"{run.steps:5d} {loss:11.6f} {accuracy:6.3f} "
            f"{np.linalg.norm(features, axis=1).mean():9.2f} {theta:6.1f} "
            f"{np.linalg.norm(weights, axis=1).mean():5.2f}"
        )


def main() -> None:
    args = _arguments()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.push:
        data_home = SHARED_DATA if SHARED_DATA.is_dir() else None
        softmax_push(args.steps, int(args.seeds.split(",")[0]), data_home)
        return
    seeds = [int(seed) for seed in args.seeds.split(",")]
    if args.sweep:
        chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(SETTINGS)
        unknown = sorted(set(chosen) - set(SETTINGS))
        if unknown:
            raise SystemExit(f"unknown setting(s) {', '.join(unknown)}; known: {list(SETTINGS)}")
        runs = {n: {**DEFAULT_SETTING, **SETTINGS[n]} for n in chosen}
        losses = ["softmax", "arcface"]
    else:
        runs = {
            "this run": {
                "dim": args.dim,
                "steps": args.steps,
                "s": args.s,
                "m2": args.m2,
                "augment": args.augment,
                "train_people": args.train_people,
            }
        }
        losses = [loss.strip() for loss in args.losses.split(",") if loss.strip()]
    summaries = []
    for name, setting in runs.items():
        gaps = _measure(name, losses, setting, seeds, args)
        if gaps["auc"]:
            summaries.append(_summary(name, gaps))
    if summaries and len(seeds) > 1:
        print(f"\narcface - softmax over seeds {args.seeds}: mean ± sd (seeds where arcface won)")
        print("\n".join(summaries))


if __name__ == "__main__":
    main()
