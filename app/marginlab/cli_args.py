"""The command line's arguments and checks: flags from the one parameter table, the usage error
that prints as one line, and what every command checks the same way (device, seed, steps,
budget, threads) before it trains. The commands themselves are in cli.py.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from marginlab.params import HEAD_PARAMS, PARAMS, Param

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


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
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


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = [field for _, field, _, _ in HYPER_OPTIONS] + ["lambda_schedule", "seed", "device"]
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def run_config(loss: str, args: argparse.Namespace):
    from marginlab.training.config import default_config, paper_preset

    if args.dim is None or args.dim < 1:
        raise CliError(f"--dim must be a whole number ≥ 1, got {args.dim}")
    make = paper_preset if args.paper else default_config
    try:
        return make(loss, args.dim, args.dataset, **_overrides(args))
    except (ValueError, TypeError) as error:
        raise CliError(one_line(error)) from None


def note_ignored(losses: Sequence[str], args: argparse.Namespace) -> None:
    """One stderr line per flag no chosen loss uses: checked, then ignored (the registry's
    rule for unused parameters, as in the head, RunConfig and the URL)."""
    from marginlab.losses.registry import loss_spec

    for flag, field, _, _ in HYPER_OPTIONS:
        given = field in HEAD_PARAMS and getattr(args, field, None) is not None
        if given and not any(loss_spec(name).uses(field) for name in losses):
            print(f"marginlab: note: {', '.join(losses)} does not use {flag}; ignored",
                  file=sys.stderr)  # fmt: skip


def check_budget(args: argparse.Namespace) -> None:
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds >= 0):
        raise CliError(f"--seconds must be ≥ 0, got {args.seconds}")
    if args.threads is not None:
        if not 1 <= args.threads <= MAX_THREADS:
            raise CliError(
                f"--threads must be a whole number in [1, {MAX_THREADS}], got {args.threads}"
            )
        import torch

        torch.set_num_threads(args.threads)


def check_common(args: argparse.Namespace) -> None:
    """What every command checks the same way before it starts: device, seed, steps."""
    from marginlab.training.config import MAX_SEED, pick_device

    if getattr(args, "device", None) is not None:
        try:
            pick_device(args.device)
        except ValueError as error:
            raise CliError(one_line(error)) from None
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise CliError(f"--seed must be a whole number in [0, 2**32 - 1], got {seed}")
    steps = getattr(args, "steps", None)
    if steps is not None and steps < 0:
        raise CliError(f"--steps must be a whole number ≥ 0, got {steps}")


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text
