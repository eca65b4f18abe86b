"""Headless command line: `python -m marginlab <command> ...` (also the `marginlab` script).

    train    train one run; --json prints one JSON object on stdout
    compare  train several losses in lock-step (same batches, same initial weights)
    eval     evaluate a saved run or comparison

Every command is a small function registered in COMMANDS with the function that adds its
arguments; adding one (e.g. `verify`, `export`) means writing those two functions and one
`register(...)` line. The shared flags and checks are in cli_args.py, the JSON fields and
printed lines in cli_results.py. Errors a user can make (unknown loss, dim 0, negative s,
unknown dataset, missing or foreign file, a device this machine lacks) exit non-zero with ONE
line on stderr and no traceback. Exit codes: 0 done, 1 the command failed (file, data,
interrupted), 2 bad arguments. Every command resolves --device the same way (config.pick_device:
"auto" is cuda, then mps, then cpu; a named device must exist). stdout carries only the
command's result (the JSON object under --json): anything else a library prints while a command
runs (scikit-learn's download message) goes to stderr, with the data notices (e.g. an offline
fallback).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from marginlab.cli_args import (
    DEFAULT_STEPS,
    CliError,
    OneLineParser,
    add_training_arguments,
    check_budget,
    check_common,
    note_ignored,
    one_line,
    run_config,
)
from marginlab.cli_results import (
    ProgressBar,
    comparison_result,
    data_notice,
    emit,
    run_line,
    summary,
)
from marginlab.cli_sweeps import add_sweep_arguments
from marginlab.params import MAX_COMPARE


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def register(
    name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Decorator: make `function(args) -> exit code` the command `name`."""

    def decorate(function: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = Command(name, help, add_arguments, function)
        return function

    return decorate


def _train(trainer: Any, args: argparse.Namespace) -> None:
    """Step a Run or LockstepComparison for --steps or --seconds, with a progress bar."""
    progress = ProgressBar(enabled=sys.stderr.isatty() and not getattr(args, "quiet", False))
    if args.seconds is not None:
        deadline = time.perf_counter() + args.seconds
        while (left := deadline - time.perf_counter()) > 0:
            trainer.step_for(min(0.25, left))
            progress.show(args.seconds - max(0.0, deadline - time.perf_counter()), args.seconds,
                          f"{trainer.steps} steps")  # fmt: skip
    else:
        total = DEFAULT_STEPS if args.steps is None else args.steps
        while trainer.steps < total:
            trainer.step(min(25, total - trainer.steps))
            progress.show(trainer.steps, total, f"{trainer.steps}/{total} steps")
    progress.close()


# ----- commands ------------------------------------------------------------------------------
def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loss", default="arcface", help="one of the heads' losses")
    add_training_arguments(parser)


@register("train", "train one run", _train_arguments)
def train_command(args: argparse.Namespace) -> int:
    check_budget(args)
    config = run_config(args.loss, args)
    note_ignored([args.loss], args)
    from marginlab.training.run import Run

    try:
        run = Run(config)
    except ValueError as error:  # e.g. a device that is not available here
        raise CliError(one_line(error)) from None
    data_notice(run)
    _train(run, args)
    result = summary(run)
    if args.save:
        from marginlab.training.run_files import save_run

        save_run(run, args.save)
        result["saved"] = args.save
    emit(result, args, [run_line(config.loss, result)])
    return 0


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--losses",
        default=None,
        help=f"comma-separated, up to {MAX_COMPARE} (default: the Compare page's line-up)",
    )
    add_training_arguments(parser)
    add_sweep_arguments(parser)


@register("compare", "train several losses in lock-step", _compare_arguments)
def compare_command(args: argparse.Namespace) -> int:
    if args.seeds:
        return _sweep("compare", args)
    check_budget(args)
    from marginlab.losses.registry import DEFAULT_COMPARE

    wanted = ",".join(DEFAULT_COMPARE) if args.losses is None else args.losses
    losses = [loss.strip() for loss in wanted.split(",") if loss.strip()]
    if not losses:
        raise CliError("--losses needs at least one loss")
    configs = [run_config(loss, args) for loss in losses]
    note_ignored(losses, args)
    from marginlab.training.comparison import LockstepComparison

    try:
        comparison = LockstepComparison(configs)
    except ValueError as error:
        raise CliError(one_line(error)) from None
    data_notice(next(iter(comparison)))
    _train(comparison, args)
    result = comparison_result(comparison)
    if args.save:
        from marginlab.training.run_files import save_comparison

        save_comparison(comparison, args.save)
        result["saved"] = args.save
    emit(result, args, [run_line(n, e) for n, e in result["losses"].items()])
    return 0


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--load", required=True, metavar="FILE", help="a saved run or comparison")
    parser.add_argument("--device", default=None, help="evaluate on this device instead")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


@register("eval", "evaluate a saved run or comparison", _eval_arguments)
def eval_command(args: argparse.Namespace) -> int:
    from marginlab.training.run_files import load_comparison, load_run, read_kind

    if read_kind(args.load) == "comparison":
        comparison = load_comparison(args.load, device=args.device)
        result = comparison_result(comparison)
        emit(result, args, [run_line(n, e) for n, e in result["losses"].items()])
        return 0
    run = load_run(args.load, device=args.device)
    result = summary(run)
    emit(result, args, [run_line(run.config.loss, result)])
    return 0


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="olivetti", choices=("olivetti",))
    parser.add_argument(
        "--losses", default="arcface,softmax", help=f"comma-separated, up to {MAX_COMPARE}"
    )
    parser.add_argument("--dim", type=int, default=32, help="embedding dimension")
    parser.add_argument("--steps", type=int, default=300, help="optimisation steps")
    parser.add_argument("--train-people", type=int, default=30, help="people to train on")
    parser.add_argument("--seed", type=int, default=0, help="who is held out; initial weights")
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, mps")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_sweep_arguments(parser)


@register("verify", "open-set face verification on people never trained on", _verify_arguments)
def verify_command(args: argparse.Namespace) -> int:
    """faces.run_open_set: lock-step training, then pairs of the held-out people's faces."""
    if args.seeds:
        return _sweep("verify", args)
    from marginlab.experiments.faces import run_open_set

    losses = [loss.strip() for loss in args.losses.split(",") if loss.strip()]
    progress = ProgressBar(enabled=sys.stderr.isatty())
    try:
        reports = run_open_set(
            losses,
            n_train_people=args.train_people,
            dim=args.dim,
            steps=args.steps,
            seed=args.seed,
            device=args.device,
            progress=lambda fraction, text: progress.show(fraction, 1.0, text),
        )
    except ValueError as error:
        raise CliError(one_line(error)) from None
    finally:
        progress.close()
    entries = {
        name: {
            "auc": report.auc,
            "eer": report.eer,
            "tar_at_far_1pct": report.tar_at_far[0.01],
            "eer_threshold": report.eer_threshold,
            "pairs": {"same": report.n_positive, "different": report.n_negative},
            "closed_set_test_acc": report.meta["closed_set_test_acc"],
            "config": report.meta["config"],
        }
        for name, report in reports.items()
    }
    names = ("dataset", "dim", "steps", "train_people", "seed", "device")
    config = {"losses": losses, **{name: getattr(args, name) for name in names}}
    lines = [
        f"{name}: AUC {e['auc']:.3f}, EER {e['eer']:.3f}, TAR@FAR=1% {e['tar_at_far_1pct']:.3f}"
        for name, e in entries.items()
    ]
    emit({"losses": entries, "config": config}, args, lines)
    return 0


def _sweep(command: str, args: argparse.Namespace) -> int:
    """The command over --seeds, each seed a cell of a sweep (cli_sweeps.py)."""
    from marginlab.cli_sweeps import SweepError, seed_sweep

    try:
        result, lines = seed_sweep(command, args, one_seed)
    except SweepError as error:
        raise CliError(str(error)) from None
    emit(result, args, lines)
    return 0


def one_seed(command: str, options: dict[str, Any], seed: int) -> dict[str, Any]:
    """One cell of a seed sweep: the command for one seed, its JSON result (raised: its error).
    Module-level, so a worker process finds it (and the commands) by importing this module."""
    out = io.StringIO()
    args = argparse.Namespace(**{**options, "seed": seed, "seeds": None, "json": True})
    args.stdout = out
    COMMANDS[command].run(args)
    return json.loads(out.getvalue())


# ----- entry point ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="marginlab", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS.values():
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            raise CliError(f"choose a command: {', '.join(COMMANDS)} (see --help)")
        check_common(args)
        args.stdout = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            return COMMANDS[args.command].run(args)
    except CliError as error:
        return _fail(str(error), 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as error:  # a user-facing tool: one line, never a traceback
        return _fail(one_line(error), 1)


def _fail(message: str, code: int) -> int:
    text = message if message.startswith("marginlab") else f"marginlab: {message}"
    print(text, file=sys.stderr)
    return code
