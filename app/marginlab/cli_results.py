"""What the command line prints: the JSON fields of a run and of a comparison (the CLI's output
contract), the one-line text form, data notices and the progress bar on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any


def summary(run: Any) -> dict[str, Any]:
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
        # The head's running state (AdaFace's batch_mean/batch_std, CurricularFace's t,
        # AdaCos's running_s); {} for the losses that keep none.
        "state": snap.state,
    }


def comparison_result(comparison: Any) -> dict[str, Any]:
    entries = {name: summary(run) for name, run in comparison.runs.items()}
    return {
        "losses": entries,
        "steps": comparison.steps,
        "same_initial_weights": len(set(comparison.init_hashes.values())) == 1,
        "device": str(next(iter(comparison)).device),
    }


def emit(result: dict[str, Any], args: argparse.Namespace, lines: Sequence[str]) -> None:
    out = getattr(args, "stdout", None) or sys.stdout  # main() keeps the real stdout there
    if args.json:
        print(json.dumps(result, allow_nan=False), file=out)
    else:
        print("\n".join(lines), file=out)


def data_notice(run: Any) -> None:
    """Say on stderr what the data is when it is not what was asked for (offline fallback)."""
    notice = run.data.dataset.notice
    if notice:
        print(f"marginlab: note: {notice}", file=sys.stderr)


def run_line(name: str, entry: dict[str, Any]) -> str:
    flag = "  NaN seen (steps skipped)" if entry["nan_seen"] else ""
    return (
        f"{name}: test acc {entry['test_acc']:.2%}, train acc {entry['train_acc']:.2%}, "
        f"loss {entry['loss']:.4f}, {entry['steps']} steps in {entry['seconds']:.1f} s "
        f"on {entry['device']}{flag}"
    )


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
