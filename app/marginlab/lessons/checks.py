"""Every lesson's claim, checked on a real training run of the lesson's own preset.

A lesson states one measurable claim (`[claim]` in its header: text, check, params). The
function registered here under `claim.check` trains the lesson's preset exactly as the lab
would (`config.run_config(lesson.preset, loss)`, seeded, `lesson.pretrain_steps` steps), measures
the one number the claim is about, and returns a ClaimResult with the numbers it saw.

    result = check_claim(lesson)          # ClaimResult(passed, measured, explanation)

A lesson whose claim fails here teaches something false: fix the lesson, not the check.
Multi-loss claims train in lock-step (training.LockstepComparison: the same batches from the
same initial backbone). Runs of a comparison never influence each other, so a check trains only
the losses its claim compares, not every loss the lesson's page shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from marginlab.geometry.angles import target_angles
from marginlab.geometry.regions import BAND, circle_directions, circle_runs, region_labels
from marginlab.lab_state import run_config
from marginlab.lessons.parser import Lesson
from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import RunConfig
from marginlab.training.run import Run
from marginlab.training.snapshots import Snapshot

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)
CIRCLE_SAMPLES = 36_000  # 0.01° per sample: a band's width is measured to ±1.7e-4 rad
CHUNK = 25  # steps between progress reports; also the loss window of lesson 2
# The checks take the snapshots they need themselves. A snapshot only reads the model (eval
# mode, no gradient), so leaving out the scheduled ones changes no weight and saves ~10 %.
NO_SCHEDULED_SNAPSHOTS = 1_000_000


@dataclass(frozen=True)
class ClaimResult:
    """What a check measured. `skipped` names why it could not run (then `passed` is False)."""

    passed: bool
    measured: dict[str, float] = field(default_factory=dict)
    explanation: str = ""
    skipped: str = ""


class Check(Protocol):
    def __call__(self, lesson: Lesson, progress: Progress | None = None) -> ClaimResult: ...


# --------------------------------------------------------------------------- helpers


def _quiet(fraction: float, message: str) -> None:
    """The default progress callback: nobody is watching."""


def _train(trainer: Run | LockstepComparison, steps: int, progress: Progress, what: str) -> None:
    """`steps` optimisation steps in chunks, reporting the fraction done after each chunk."""
    done = 0
    while done < steps:
        chunk = min(CHUNK, steps - done)
        trainer.step(chunk)
        done += chunk
        progress(done / steps, f"{what}: step {done} of {steps}")


def _final_snapshot(run: Run) -> Snapshot:
    """A snapshot at the run's current step (the scheduled one if there is one)."""
    latest = run.history[-1] if run.history else None
    return latest if latest is not None and latest.step == run.steps else run.snapshot()


def _config(lesson: Lesson, loss: str | None = None, **changes: Any) -> RunConfig:
    """The run the lab would train for this lesson (and loss), with `changes`."""
    config = run_config(lesson.preset, loss)
    return config.with_changes(snapshot_every=NO_SCHEDULED_SNAPSHOTS, **changes)


def _lockstep(lesson: Lesson, losses: Sequence[str]) -> LockstepComparison:
    return LockstepComparison([_config(lesson, loss) for loss in losses])


def _mean_norm(features: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(features, dtype=np.float64), axis=1).mean())


def _steps(lesson: Lesson) -> int:
    if lesson.pretrain_steps < 1:
        raise ValueError(f"lesson {lesson.id} trains for 0 steps: its claim needs pretrain_steps")
    return lesson.pretrain_steps


# --------------------------------------------------------------------------- lesson 1


def feature_norm_grows(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """Softmax rewards long features (Wen et al., ECCV 2016, Fig. 2; NormFace §3): the probe's
    mean raw ‖x‖ at the end is at least `ratio` times its mean at step `early_step`."""
    progress = progress or _quiet
    early, ratio = int(lesson.claim.params["early_step"]), float(lesson.claim.params["ratio"])
    steps = _steps(lesson)
    run = Run(_config(lesson))
    _train(run, early, lambda f, m: progress(f * early / steps, m), "softmax")
    norm_early = _mean_norm(_final_snapshot(run).features)
    _train(
        run,
        steps - early,
        lambda f, m: progress((early + f * (steps - early)) / steps, m),
        "softmax",
    )
    end = _final_snapshot(run)
    norm_end = _mean_norm(end.features)
    measured = {
        f"mean ‖x‖ at step {early}": norm_early,
        f"mean ‖x‖ at step {steps}": norm_end,
        "ratio": norm_end / norm_early,
        "test accuracy": end.test_acc,
    }
    passed = norm_end >= ratio * norm_early
    return ClaimResult(
        passed,
        measured,
        f"The mean feature length of the probe digits grew {norm_end / norm_early:.2f}× "
        f"between step {early} and step {steps} (the claim asks for at least {ratio:g}×).",
    )


# --------------------------------------------------------------------------- lesson 2


def normface_loss_floor(s: float, n_classes: int = 10) -> float:
    """The smallest NormFace loss of one sample when C class weights are spread evenly on a
    circle and the feature sits exactly on its own weight (Wang et al., NormFace, ACM MM 2017,
    §3.3 derives the general bound):  log(1 + Σ_{k=1}^{C−1} exp(s·(cos(2πk/C) − 1))).

    Evenly spaced weights are the best case in 2-D, so no 2-D NormFace model gets below it.
    """
    if n_classes < 2:
        raise ValueError(f"the floor needs at least two classes, got {n_classes}")
    others = sum(
        math.exp(s * (math.cos(2 * math.pi * k / n_classes) - 1.0)) for k in range(1, n_classes)
    )
    return math.log1p(others)


def scale_sets_loss_floor(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """NormFace at s = low_s: the loss stays above the floor while the model already classifies
    well (test accuracy ≥ min_acc). Two losses are compared with the floor: the engine's
    training loss, i.e. the mean cross-entropy over the last CHUNK batches (NormFace has no
    margin, so it is exactly the loss being minimised), and the mean loss over the whole test
    set at the final weights. The floor holds for the MEAN over balanced classes, not for one
    sample, so these means are what the claim is about."""
    progress = progress or _quiet
    low_s = float(lesson.claim.params["low_s"])
    min_acc = float(lesson.claim.params["min_acc"])
    steps = _steps(lesson)
    run = Run(_config(lesson, s=low_s))
    _train(run, steps - CHUNK, lambda f, m: progress(f * (steps - CHUNK) / steps, m), "NormFace")
    run.snapshot()  # starts the loss window of the last CHUNK batches
    _train(run, CHUNK, lambda f, m: progress((steps - CHUNK + f * CHUNK) / steps, m), "NormFace")
    n_classes = run.data.num_classes
    floor = normface_loss_floor(low_s, n_classes)
    train_loss = run.snapshot().loss
    test = run.evaluate()
    measured = {
        f"floor at s = {low_s:g}": floor,
        f"training loss, last {CHUNK} batches": train_loss,
        "test loss": test["test_loss"],
        "test accuracy": test["test_acc"],
        "floor at s = 16 (for comparison)": normface_loss_floor(16.0, n_classes),
    }
    passed = train_loss >= floor and test["test_loss"] >= floor and test["test_acc"] >= min_acc
    return ClaimResult(
        passed,
        measured,
        f"At s = {low_s:g} after {steps} steps: training loss {train_loss:.3f} (mean over the "
        f"last {CHUNK} batches) and test loss {test['test_loss']:.3f}, against the floor "
        f"{floor:.3f}, with {100 * test['test_acc']:.1f} % of the test digits right (the claim "
        f"asks for at least {100 * min_acc:g} %).",
    )


# --------------------------------------------------------------------------- lesson 3


def _band_widths(
    weights: np.ndarray, *, s: float, m2: float, policy: str
) -> tuple[list[float], int, int]:
    """Widths of the ArcFace margin bands on the circle between weight-neighbours more than m2
    apart, plus how many bands there are and how many were skipped (not between such a pair)."""
    labels = region_labels(
        circle_directions(CIRCLE_SAMPLES), weights, loss="arcface", s=s, m2=m2, policy=policy
    )
    runs = circle_runs(labels)
    angle = np.mod(np.arctan2(weights[:, 1], weights[:, 0]), 2 * math.pi)
    order = np.argsort(angle)
    gap_after = np.mod(np.roll(angle[order], -1) - angle[order], 2 * math.pi)
    gaps = {
        (int(a), int(b)): float(g)
        for a, b, g in zip(order, np.roll(order, -1), gap_after, strict=True)
    }
    widths: list[float] = []
    bands = skipped = 0
    for index, run in enumerate(runs):
        if run.label != BAND:
            continue
        bands += 1
        before, after = runs[index - 1].label, runs[(index + 1) % len(runs)].label
        gap = gaps.get((before, after))
        if gap is None or gap <= m2:
            skipped += 1  # not two neighbouring classes with room for a margin between them
            continue
        widths.append(run.end - run.start)
    return widths, bands, skipped


def band_width_equals_margin(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """ArcFace's boundary of class a is θ_a + m = θ_b (Deng et al., CVPR 2019, Table 1 and
    Fig. 5), so between two neighbouring weights the band where neither owns a direction is
    m wide. Measured on a 0.01° circle with the trained weights via geometry.region_labels."""
    progress = progress or _quiet
    tolerance = float(lesson.claim.params["tolerance"])
    min_bands = int(lesson.claim.params.get("min_bands", 2))
    config = _config(lesson)
    run = Run(config)
    _train(run, _steps(lesson), progress, "ArcFace")
    weights = _final_snapshot(run).weights
    widths, bands, skipped = _band_widths(weights, s=config.s, m2=config.m2, policy=config.policy)
    errors = [abs(width - config.m2) for width in widths]
    measured = {
        "m (rad)": config.m2,
        "bands": float(bands),
        "bands measured": float(len(widths)),
        "narrowest band (rad)": min(widths, default=float("nan")),
        "widest band (rad)": max(widths, default=float("nan")),
        "largest error (rad)": max(errors, default=float("nan")),
    }
    # Some bands must qualify, or the claim would hold vacuously.
    passed = len(widths) >= min_bands and max(errors) <= tolerance
    return ClaimResult(
        passed,
        measured,
        f"{len(widths)} of {bands} grey bands lie between neighbouring classes more than "
        f"m = {config.m2:g} rad apart; their widths range from "
        f"{measured['narrowest band (rad)']:.4f} to {measured['widest band (rad)']:.4f} rad "
        f"(tolerance ±{tolerance:g}). "
        f"{skipped} band(s) skipped.",
    )


# --------------------------------------------------------------------------- lesson 4


def margins_tighten_classes(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """Mean θ_y of the probe (the angle of each feature to its own class weight) after lock-step
    training: every margin loss named must end below the baseline (CosFace, Wang et al. CVPR
    2018; ArcFace, Deng et al. CVPR 2019, Table 3's "Intra" is the same idea)."""
    progress = progress or _quiet
    baseline = str(lesson.claim.params["baseline"])
    margin_losses = [str(loss) for loss in lesson.claim.params["margin_losses"]]
    comparison = _lockstep(lesson, [baseline, *margin_losses])
    _train(comparison, _steps(lesson), progress, ", ".join([baseline, *margin_losses]))
    labels = comparison.data.probe_labels
    theta = {}
    for name, run in comparison.runs.items():
        snap = _final_snapshot(run)
        theta[name] = math.degrees(float(target_angles(snap.features, labels, snap.weights).mean()))
    measured = {f"mean θ_y {name} (°)": value for name, value in theta.items()}
    passed = all(theta[loss] < theta[baseline] for loss in margin_losses)
    return ClaimResult(
        passed,
        measured,
        "Mean angle to the own class weight: "
        + ", ".join(f"{name} {value:.1f}°" for name, value in theta.items())
        + ".",
    )


# --------------------------------------------------------------------------- lesson 5


def paper_preset_struggles_in_2d(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """The paper's ArcFace s = 64, m = 0.5 against a 2-D preset, in lock-step. "Without a NaN"
    is what the engine's guard reports: a step whose loss or gradient is not finite is skipped
    and counted (Run.skipped_steps), so a run with zero skipped steps never produced a NaN."""
    progress = progress or _quiet
    gentle = {
        "s": float(lesson.claim.params["gentle_s"]),
        "m2": float(lesson.claim.params["gentle_m2"]),
    }
    paper = _config(lesson)
    comparison = LockstepComparison([paper, paper.with_changes(**gentle)])
    _train(comparison, _steps(lesson), progress, "ArcFace, paper and 2-D presets")
    paper_run, gentle_run = comparison.runs.values()
    paper_acc, gentle_acc = paper_run.evaluate()["test_acc"], gentle_run.evaluate()["test_acc"]
    measured = {
        f"test accuracy s = {paper.s:g}, m = {paper.m2:g}": paper_acc,
        f"test accuracy s = {gentle['s']:g}, m = {gentle['m2']:g}": gentle_acc,
        "skipped steps (paper preset)": float(paper_run.skipped_steps),
        "skipped steps (2-D preset)": float(gentle_run.skipped_steps),
    }
    no_nan = not paper_run.nan_seen and not gentle_run.nan_seen
    passed = no_nan and paper_acc < gentle_acc
    return ClaimResult(
        passed,
        measured,
        f"Test accuracy {100 * paper_acc:.1f} % (paper preset) vs {100 * gentle_acc:.1f} % "
        f"(s = {gentle['s']:g}, m = {gentle['m2']:g}); steps skipped for a non-finite loss or "
        f"gradient: {paper_run.skipped_steps} and {gentle_run.skipped_steps}.",
    )


# --------------------------------------------------------------------------- lesson 6


def relative_spread(features: np.ndarray, labels: np.ndarray) -> float:
    """mean ‖x − c_y‖ / mean ‖x‖, with c_y the mean of class y's features: how compact the
    classes are relative to the scale of the features (so a model cannot win by shrinking)."""
    x = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    centres = np.zeros((labels.max() + 1, x.shape[1]))
    np.add.at(centres, labels, x)
    centres /= np.maximum(np.bincount(labels), 1)[:, None]
    return float(np.linalg.norm(x - centres[labels], axis=1).mean() / _mean_norm(x))


def center_loss_compacts(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """Softmax vs softmax + center loss (Wen et al., ECCV 2016, Eq. 2–4) in lock-step; the
    centres c_y here are the probe features' class means, not the loss's learned centres."""
    progress = progress or _quiet
    baseline = str(lesson.claim.params["baseline"])
    with_center = str(lesson.claim.params["with_center"])
    comparison = _lockstep(lesson, [baseline, with_center])
    _train(comparison, _steps(lesson), progress, f"{baseline} and {with_center}")
    labels = comparison.data.probe_labels
    spread = {
        name: relative_spread(_final_snapshot(run).features, labels)
        for name, run in comparison.runs.items()
    }
    accuracy = {name: _final_snapshot(run).test_acc for name, run in comparison.runs.items()}
    measured = {f"mean ‖x − c_y‖ / mean ‖x‖ {name}": value for name, value in spread.items()}
    measured.update({f"test accuracy {name}": value for name, value in accuracy.items()})
    passed = spread[with_center] < spread[baseline]
    return ClaimResult(
        passed,
        measured,
        f"Relative spread {spread[with_center]:.3f} with center loss vs {spread[baseline]:.3f} "
        "without.",
    )


# --------------------------------------------------------------------------- lesson 7


def unseen_faces_verified(lesson: Lesson, progress: Progress | None = None) -> ClaimResult:
    """Open-set verification on Olivetti (faces.run_open_set: train on `train_people` people,
    embed every image of the others, score same/different-person pairs by cosine): the ArcFace
    model's AUC must exceed `min_auc`. Needs the Olivetti download; without it, skipped."""
    from marginlab.data.datasets import DatasetUnavailable
    from marginlab.experiments.faces import run_open_set

    params = lesson.claim.params
    min_auc = float(params["min_auc"])
    steps, dim = int(params["steps"]), int(params["dim"])
    try:
        reports = run_open_set(
            ("arcface",),
            n_train_people=int(params.get("train_people", 30)),
            dim=dim,
            steps=steps,
            seed=lesson.preset.seed,
            progress=progress,
            device=None if lesson.preset.device == "auto" else lesson.preset.device,
        )
    except DatasetUnavailable as error:
        return ClaimResult(False, skipped=f"needs the Olivetti download. {error}")
    report = reports["arcface"]
    config = report.meta["config"]
    measured = {
        "AUC on unseen people": report.auc,
        "EER": report.eer,
        "TAR at FAR = 1 %": report.tar_at_far[0.01],
        "same-person pairs": float(report.n_positive),
        "different-person pairs": float(report.n_negative),
        "s": float(config["s"]),
        "m (rad)": float(config["m2"]),
    }
    return ClaimResult(
        report.auc > min_auc,
        measured,
        f"ArcFace ({dim}-D, s = {config['s']:g}, m = {config['m2']:g}) after {steps} steps: "
        f"AUC {report.auc:.3f} on {report.n_positive} same-person and {report.n_negative} "
        f"different-person pairs of people it never saw (the claim asks for more than "
        f"{min_auc:g}; chance is 0.5).",
    )


CHECKS: dict[str, Check] = {
    "feature_norm_grows": feature_norm_grows,
    "scale_sets_loss_floor": scale_sets_loss_floor,
    "band_width_equals_margin": band_width_equals_margin,
    "margins_tighten_classes": margins_tighten_classes,
    "paper_preset_struggles_in_2d": paper_preset_struggles_in_2d,
    "center_loss_compacts": center_loss_compacts,
    "unseen_faces_verified": unseen_faces_verified,
}


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
