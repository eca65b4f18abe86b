"""Headless command line: `python -m marginlab <command> ...` (also the `marginlab` script).

    train    train one run; --json prints one JSON object on stdout
    compare  train several losses in lock-step (same batches, same initial weights)
    eval     evaluate a saved run or comparison

Every command is a small function registered in COMMANDS with the function that adds its
arguments; adding one (e.g. `verify`, `export`) means writing those two functions and one
`register(...)` line. Errors a user can make (unknown loss, dim 0, negative s, unknown dataset,
missing or foreign file, a device this machine lacks) exit non-zero with ONE line on stderr and
no traceback. Exit codes: 0 done, 1 the command failed (file, data, interrupted), 2 bad
arguments. Every command resolves --device the same way (config.pick_device: "auto" is cuda,
then mps, then cpu; a named device must exist). stdout carries only the command's result (the
JSON object under --json): anything else a library prints while a command runs (scikit-learn's
download message) goes to stderr, with the data notices (e.g. an offline fallback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from marginlab.cli_sweeps import add_sweep_arguments
from marginlab.params import HEAD_PARAMS, MAX_COMPARE, PARAMS, Param

DEFAULT_STEPS = 1000
MAX_THREADS = 256  # torch segfaults far above the machine's cores (tried: 100,000)


def _table_type(param: Param) -> Callable[[str], Any]:
    """argparse type from the one parameter table: its type and range, its one-line message."""

    def parse(raw: str) -> Any:
        try:
            return param.parse(raw)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = param.name  # argparse names the type in some messages
    return parse


# Hyper-parameter options shared by train and compare: (flag, RunConfig field, type, help),
# every one from params.PARAMS (flag names, ranges and help live there).
HYPER_OPTIONS: tuple[tuple[str, str, Callable[[str], Any], str], ...] = tuple(
    (p.flag, p.name, _table_type(p), f"{p.help} [{p.low:g}, {p.high:g}]" if p.high else p.help)
    for p in PARAMS.values()
    if p.flag
)


class CliError(Exception):
    """A usage error: printed as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage block, no traceback)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{self.prog}: {message}")


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


# ----- shared arguments --------------------------------------------------------------------
def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="mnist-toy", help="mnist-toy (offline), mnist, ...")
    parser.add_argument("--dim", type=int, default=2, help="embedding dimension (2, 3, any d)")
    for flag, field, kind, text in HYPER_OPTIONS:
        parser.add_argument(flag, dest=field, type=kind, default=None, help=text)
    parser.add_argument(
        "--no-lambda-schedule",
        dest="lambda_schedule",
        action="store_false",
        default=None,
        help="SphereFace: fixed λ instead of the official annealing",
    )
    parser.add_argument("--paper", action="store_true", help="the papers' s and m, no warm-up")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help=f"optimisation steps (default {DEFAULT_STEPS})")
    budget.add_argument("--seconds", type=float, help="train for this many seconds instead")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, mps")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--save", metavar="FILE", help="save the trained run to FILE")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _note_ignored(losses: Sequence[str], args: argparse.Namespace) -> None:
    """One stderr line per flag no chosen loss uses: checked, then ignored (the registry's
    rule for unused parameters, as in the head, RunConfig and the URL)."""
    from marginlab.losses.registry import loss_spec

    for flag, field, _, _ in HYPER_OPTIONS:
        given = field in HEAD_PARAMS and getattr(args, field, None) is not None
        if given and not any(loss_spec(name).uses(field) for name in losses):
            print(f"marginlab: note: {', '.join(losses)} does not use {flag}; ignored",
                  file=sys.stderr)  # fmt: skip


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = [field for _, field, _, _ in HYPER_OPTIONS] + ["lambda_schedule", "seed", "device"]
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _config(loss: str, args: argparse.Namespace):
    from marginlab.training.config import default_config, paper_preset

    if args.dim is None or args.dim < 1:
        raise CliError(f"--dim must be a whole number ≥ 1, got {args.dim}")
    make = paper_preset if args.paper else default_config
    try:
        return make(loss, args.dim, args.dataset, **_overrides(args))
    except (ValueError, TypeError) as error:
        raise CliError(_one_line(error)) from None


def _check_budget(args: argparse.Namespace) -> None:
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds >= 0):
        raise CliError(f"--seconds must be ≥ 0, got {args.seconds}")
    if args.threads is not None:
        if not 1 <= args.threads <= MAX_THREADS:
            raise CliError(
                f"--threads must be a whole number in [1, {MAX_THREADS}], got {args.threads}"
            )
        import torch

        torch.set_num_threads(args.threads)


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


def _summary(run: Any) -> dict[str, Any]:
    """The JSON fields of one run: final loss and accuracies, time, NaN flag, config.

    loss and train_acc are the training window before the last snapshot (a saved run reloads
    with that snapshot, so `eval` repeats them); test_acc is the whole test set, computed now,
    and so are the leads and Table-3 angles (experiments.angle_report) on the same images."""
    from marginlab.experiments.angle_report import angle_report

    snap = run.snapshot()  # returns the last one when nothing changed since
    evaluation = run.evaluate()
    angles = angle_report(run, run.data.test_images, run.data.test_labels)
    return {
        "loss": snap.loss,
        "train_acc": snap.train_acc,
        "test_acc": evaluation["test_acc"],
        "test_loss": evaluation["test_loss"],
        "test_acc_on": f"the whole test set ({len(run.data.test_labels):,} images)",
        **{name: round(value, 6) for name, value in angles.items()},
        "steps": run.steps,
        "seconds": round(run.elapsed, 3),
        "nan_seen": run.nan_seen,
        "skipped_steps": run.skipped_steps,
        "device": str(run.device),
        "dataset": run.data.dataset.name,
        "init_hash": run.init_hash,
        "config": run.config.to_dict(),
    }


def _emit(result: dict[str, Any], args: argparse.Namespace, lines: Sequence[str]) -> None:
    out = getattr(args, "stdout", None) or sys.stdout  # main() keeps the real stdout there
    if args.json:
        print(json.dumps(result, allow_nan=False), file=out)
    else:
        print("\n".join(lines), file=out)


def _data_notice(run: Any) -> None:
    """Say on stderr what the data is when it is not what was asked for (offline fallback)."""
    notice = run.data.dataset.notice
    if notice:
        print(f"marginlab: note: {notice}", file=sys.stderr)


def _run_line(name: str, entry: dict[str, Any]) -> str:
    flag = "  NaN seen (steps skipped)" if entry["nan_seen"] else ""
    return (
        f"{name}: test acc {entry['test_acc']:.2%}, train acc {entry['train_acc']:.2%}, "
        f"loss {entry['loss']:.4f}, {entry['steps']} steps in {entry['seconds']:.1f} s "
        f"on {entry['device']}{flag}"
    )


# ----- commands ------------------------------------------------------------------------------
def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loss", default="arcface", help="one of the heads' losses")
    _add_training_arguments(parser)


@register("train", "train one run", _train_arguments)
def train_command(args: argparse.Namespace) -> int:
    _check_budget(args)
    config = _config(args.loss, args)
    _note_ignored([args.loss], args)
    from marginlab.training.run import Run

    try:
        run = Run(config)
    except ValueError as error:  # e.g. a device that is not available here
        raise CliError(_one_line(error)) from None
    _data_notice(run)
    _train(run, args)
    result = _summary(run)
    if args.save:
        from marginlab.training.run_files import save_run

        save_run(run, args.save)
        result["saved"] = args.save
    _emit(result, args, [_run_line(config.loss, result)])
    return 0


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--losses",
        default=None,
        help=f"comma-separated, up to {MAX_COMPARE} (default: the Compare page's line-up)",
    )
    _add_training_arguments(parser)
    add_sweep_arguments(parser)


@register("compare", "train several losses in lock-step", _compare_arguments)
def compare_command(args: argparse.Namespace) -> int:
    if args.seeds:
        return _sweep("compare", args)
    _check_budget(args)
    from marginlab.losses.registry import DEFAULT_COMPARE

    wanted = ",".join(DEFAULT_COMPARE) if args.losses is None else args.losses
    losses = [loss.strip() for loss in wanted.split(",") if loss.strip()]
    if not losses:
        raise CliError("--losses needs at least one loss")
    configs = [_config(loss, args) for loss in losses]
    _note_ignored(losses, args)
    from marginlab.training.comparison import LockstepComparison

    try:
        comparison = LockstepComparison(configs)
    except ValueError as error:
        raise CliError(_one_line(error)) from None
    _data_notice(next(iter(comparison)))
    _train(comparison, args)
    result = _comparison_result(comparison)
    if args.save:
        from marginlab.training.run_files import save_comparison

        save_comparison(comparison, args.save)
        result["saved"] = args.save
    _emit(result, args, [_run_line(n, e) for n, e in result["losses"].items()])
    return 0


def _comparison_result(comparison: Any) -> dict[str, Any]:
    entries = {name: _summary(run) for name, run in comparison.runs.items()}
    return {
        "losses": entries,
        "steps": comparison.steps,
        "same_initial_weights": len(set(comparison.init_hashes.values())) == 1,
        "device": str(next(iter(comparison)).device),
    }


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--load", required=True, metavar="FILE", help="a saved run or comparison")
    parser.add_argument("--device", default=None, help="evaluate on this device instead")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


@register("eval", "evaluate a saved run or comparison", _eval_arguments)
def eval_command(args: argparse.Namespace) -> int:
    from marginlab.training.run_files import load_comparison, load_run, read_kind

    if read_kind(args.load) == "comparison":
        comparison = load_comparison(args.load, device=args.device)
        result = _comparison_result(comparison)
        _emit(result, args, [_run_line(n, e) for n, e in result["losses"].items()])
        return 0
    run = load_run(args.load, device=args.device)
    result = _summary(run)
    _emit(result, args, [_run_line(run.config.loss, result)])
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
        raise CliError(_one_line(error)) from None
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
    _emit({"losses": entries, "config": config}, args, lines)
    return 0


def _sweep(command: str, args: argparse.Namespace) -> int:
    """The command over --seeds, each seed a cell of a sweep (cli_sweeps.py)."""
    from marginlab.cli_sweeps import SweepError, seed_sweep

    try:
        result, lines = seed_sweep(command, args)
    except SweepError as error:
        raise CliError(str(error)) from None
    _emit(result, args, lines)
    return 0


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
        _check_common(args)
        args.stdout = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            return COMMANDS[args.command].run(args)
    except CliError as error:
        return _fail(str(error), 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as error:  # a user-facing tool: one line, never a traceback
        return _fail(_one_line(error), 1)


def _check_common(args: argparse.Namespace) -> None:
    """What every command checks the same way before it starts: device, seed, steps."""
    from marginlab.training.config import MAX_SEED, pick_device

    if getattr(args, "device", None) is not None:
        try:
            pick_device(args.device)
        except ValueError as error:
            raise CliError(_one_line(error)) from None
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise CliError(f"--seed must be a whole number in [0, 2**32 - 1], got {seed}")
    steps = getattr(args, "steps", None)
    if steps is not None and steps < 0:
        raise CliError(f"--steps must be a whole number ≥ 0, got {steps}")


def _fail(message: str, code: int) -> int:
    text = message if message.startswith("marginlab") else f"marginlab: {message}"
    print(text, file=sys.stderr)
    return code


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text


class ProgressBar:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self, enabled: bool, width: int = 30) -> None:
        self.enabled = enabled
        self.width = width
        self._shown = False

    def show(self, done: float, total: float, text: str) -> None:
        if not self.enabled:
            return
        fraction = 1.0 if total <= 0 else min(1.0, done / total)
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        sys.stderr.write(f"\r[{bar}] {fraction:4.0%} {text}   ")
        sys.stderr.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
