"""`compare` and `verify` over several seeds, as a sweep: `--seeds 0,1,2 [--executor KIND]`.

Each seed is one cell of training.sweeps: the very command with `--seed S --json`, run where
the executor puts it (serial: here in turn; local: one process per core; ray: Ray tasks on
$MARGINLAB_RAY_ADDRESS). The result is one JSON object: {"seeds": {"0": <the command's own
JSON for seed 0>, ...}, "executor": KIND}; without --seeds a command prints what it always did.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from marginlab.training.sweeps import KINDS, run_cells, sweep_executor, usable_cores


class SweepError(ValueError):
    """A bad --seeds / --executor value (the CLI prints it as one line)."""


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seeds", default=None, help="comma-separated seeds: one run per seed, as a sweep"
    )
    parser.add_argument(
        "--executor",
        choices=KINDS,
        default=None,
        help="with --seeds: where the runs train (default: ray if MARGINLAB_RAY_ADDRESS is set, "
        "else local, one process per core)",
    )


def seed_sweep(
    command: str, args: argparse.Namespace, one_seed: Callable[..., dict[str, Any]]
) -> tuple[dict[str, Any], list[str]]:
    """Run `command` once per seed of `args.seeds`; its results and one line per seed.

    `one_seed(command, options, seed)` is cli.one_seed, handed in so that this module does not
    import the commands back (a worker process imports cli.py and finds it there)."""
    from marginlab.training.config import MAX_SEED

    try:
        seeds = [int(text) for text in args.seeds.split(",") if text.strip()]
    except ValueError:
        raise SweepError(
            f"--seeds takes whole numbers separated by commas, got {args.seeds!r}"
        ) from None
    if not seeds or any(not 0 <= seed <= MAX_SEED for seed in seeds):
        raise SweepError(f"--seeds needs seeds in [0, {MAX_SEED}], got {args.seeds!r}")
    if getattr(args, "save", None):
        raise SweepError("--save keeps one run: leave it out with --seeds")
    options = {key: value for key, value in vars(args).items() if key != "stdout"}
    kind = args.executor or ("ray" if os.environ.get("MARGINLAB_RAY_ADDRESS") else "local")
    cells = [{"command": command, "options": options, "seed": seed} for seed in seeds]
    with sweep_executor(kind, workers=min(len(seeds), usable_cores())) as executor:
        results = run_cells(one_seed, cells, executor=executor)
    lines = [f"seed {seed}: {_line(result)}" for seed, result in zip(seeds, results, strict=True)]
    return {
        "seeds": {str(s): r for s, r in zip(seeds, results, strict=True)},
        "executor": kind,
    }, lines


def _line(result: dict[str, Any]) -> str:
    losses = result.get("losses", {})
    parts = []
    for name, entry in losses.items():
        if "auc" in entry:
            parts.append(f"{name} AUC {entry['auc']:.3f}")
        else:
            parts.append(f"{name} test acc {entry['test_acc']:.2%}")
    return ", ".join(parts)
