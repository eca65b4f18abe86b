"""Lesson 7: a face model verifies people it never saw."""

from __future__ import annotations

from marginlab.lessons.checks.common import ClaimResult, Progress
from marginlab.lessons.parser import Lesson


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
