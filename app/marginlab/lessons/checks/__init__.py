"""Every lesson's claim, checked on a real training run of the lesson's own preset.

A lesson states one measurable claim (`[claim]` in its header: text, check, params). The
function registered here under `claim.check` trains the lesson's preset exactly as the lab
would (`config.run_config(lesson.preset, loss)`, seeded, `lesson.pretrain_steps` steps), measures
the numbers the claim is about, and returns a ClaimResult with the numbers it saw.

    result = check_claim(lesson)          # ClaimResult(passed, measured, explanation)

A lesson whose claim fails here teaches something false: fix the lesson, not the check; and a
check tests the claim as worded, bounds included. Multi-loss claims train in lock-step
(training.LockstepComparison: the same batches from the same initial backbone). Runs of a
comparison never influence each other, so a check trains only the losses its claim compares.
Each lesson's check lives in its own module (common.py holds what they share).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from marginlab.lessons.checks.adaptive_norms import norm_tracks_difficulty
from marginlab.lessons.checks.arcface_bands import band_width_equals_margin, band_widths
from marginlab.lessons.checks.center_loss import center_loss_compacts, relative_spread
from marginlab.lessons.checks.common import Check, ClaimResult, Progress
from marginlab.lessons.checks.feature_norms import feature_norm_grows
from marginlab.lessons.checks.margin_family import margins_tighten_classes
from marginlab.lessons.checks.normface_floor import normface_loss_floor, scale_sets_loss_floor
from marginlab.lessons.checks.open_set_faces import unseen_faces_verified
from marginlab.lessons.checks.paper_preset import paper_preset_struggles_in_2d
from marginlab.lessons.parser import Lesson

CHECKS: dict[str, Check] = {
    "feature_norm_grows": feature_norm_grows,
    "scale_sets_loss_floor": scale_sets_loss_floor,
    "band_width_equals_margin": band_width_equals_margin,
    "margins_tighten_classes": margins_tighten_classes,
    "paper_preset_struggles_in_2d": paper_preset_struggles_in_2d,
    "center_loss_compacts": center_loss_compacts,
    "unseen_faces_verified": unseen_faces_verified,
    "norm_tracks_difficulty": norm_tracks_difficulty,
}
__all__ = [
    "CHECKS",
    "ClaimResult",
    "Progress",
    "band_widths",
    "check_claim",
    "normface_loss_floor",
    "relative_spread",
]


def check_claim(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """Run the check the lesson's claim names (ValueError for a name nobody implemented)."""
    check = CHECKS.get(lesson.claim.check)
    if check is None:
        raise ValueError(
            f"lesson {lesson.id}: unknown claim check {lesson.claim.check!r}; "
            f"known: {', '.join(CHECKS)}"
        )
    with _one_thread():
        return check(lesson, progress)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Train on one thread, as the app does (main.py): the engine is bit-for-bit reproducible
    for a given thread count, so the app's button and the test suite measure the same numbers."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
