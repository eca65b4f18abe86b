"""One trainer inside a worker: a Run or a LockstepComparison with its transport state.

The worker's loop asks each playing slot for one step at a time (`advance`), so a command that
arrives (Pause, a slider) is handled between two steps: Pause is exact, and a new s or m is in
force from the next step. A slot charges the CPU time of its steps and snapshots to itself;
the worker always steps the playing slot that has used the least (fair by CPU time).

Snapshots for the page: at most one set per `PUSH_INTERVAL_S` (≈ 4 per second, the most a page
can draw), or a little more often than the pages that look redraw (`pace`: a page busy drawing
five figures redraws about once a second, and a snapshot it cannot draw costs as much training
as a step), and never more often than keeps their cost under a third of the slot's time, so a
six-run comparison does not spend its CPU on pictures nobody can see yet. A page that has
waited `PICTURE_FLOOR_S` for a picture gets one as soon as its cost is under half the slot's
time: on a crowded worker (eleven trainers of a class on one core) the third rule alone gave
each page a picture every four seconds or so. The snapshots a run takes on its own schedule
(every `snapshot_every` steps) are pushed too.
"""

from __future__ import annotations

import time
from typing import Any

from marginlab.training.comparison import LockstepComparison
from marginlab.training.run import Run
from marginlab.training.service.messages import RunInfo, RunUpdate, Update
from marginlab.training.snapshots import Snapshot

PUSH_INTERVAL_S = 0.25
MAX_PACE_S = 2.0  # a page that redraws more slowly still gets a snapshot this often
# Live snapshots come a little more often than the pages redraw, so that each redraw finds a
# new one: at the same rate the two drifted in and out of phase, and one redraw in five to
# ten showed the previous picture again (six tabs on a lesson, bench_class_tabs.py).
PACE_AHEAD = 0.75
# A live snapshot may cost at most 1 / SNAPSHOT_COST_FACTOR of the time between two of them...
SNAPSHOT_COST_FACTOR = 3.0
# ...or, once a page has waited PICTURE_FLOOR_S for one, 1 / (CROWDED_COST_FACTOR + 1). Under a
# second, so that with the turns of the other trainers and the page's poll (0.35 s) a page
# still shows a new picture every second: at 1.0 s, eleven trainers on a core gave 0.87 a second.
PICTURE_FLOOR_S = 0.8
CROWDED_COST_FACTOR = 1.0


def picture_due(*, since_push: float, interval: float, trained: float, cost: float) -> bool:
    """Whether a playing slot takes its next live snapshot now: `since_push` seconds of the
    clock and `trained` seconds of its own CPU after the previous one, which cost `cost`;
    `interval` is the most often its pages redraw."""
    if since_push < interval:
        return False
    if trained >= SNAPSHOT_COST_FACTOR * cost:
        return True
    return since_push >= max(PICTURE_FLOOR_S, interval) and trained >= CROWDED_COST_FACTOR * cost


Trainer = Run | LockstepComparison


class Slot:
    """A trainer, whether it plays, what it has used and what the server has seen."""

    def __init__(self, trainer_id: str, trainer: Trainer) -> None:
        self.id = trainer_id
        self.trainer = trainer
        self.runs: list[Run] = (
            list(trainer) if isinstance(trainer, LockstepComparison) else [trainer]
        )
        self.playing = False
        self.until: int | None = None  # play stops by itself at this step
        self.error = ""
        self.cpu_seconds = 0.0
        self.params_version = 0
        self._sent: list[Snapshot | None] = [None] * len(self.runs)
        self.push_interval = PUSH_INTERVAL_S
        self._pushed_at = -float("inf")  # the clock at the previous live snapshot,
        self._cpu_at_push = 0.0  # the slot's CPU time then,
        self._push_cost = 0.0  # and what that snapshot cost
        self._skipped_at_play = 0
        self._on_cpu = self.runs[0].device.type == "cpu"

    @property
    def kind(self) -> str:
        return "comparison" if isinstance(self.trainer, LockstepComparison) else "run"

    @property
    def steps(self) -> int:
        return self.runs[0].steps

    def infos(self) -> tuple[RunInfo, ...]:
        names = self.trainer.names if isinstance(self.trainer, LockstepComparison) else None
        infos = []
        for index, run in enumerate(self.runs):
            data = run.data
            infos.append(
                RunInfo(
                    name=names[index] if names else run.config.loss,
                    config=run.config,
                    init_hash=run.init_hash,
                    probe_labels=data.probe_labels,
                    class_names=tuple(data.dataset.class_names),
                    num_classes=data.num_classes,
                    probe_description=data.probe_description,
                    device=run.device.type,
                    source=data.dataset.source,
                    notice=data.dataset.notice or "",
                )
            )
        return tuple(infos)

    # ----- transport --------------------------------------------------------------------
    def play(self, until: int | None, fair_start: float | None) -> None:
        """Start playing (until step `until`, if given). `fair_start` is the least CPU time
        of the slots already playing (None: none plays): the slot joins them there, so one
        that was paused neither gets a burst to catch up nor waits for the others to."""
        if until is not None and until <= self.steps:
            return
        self.playing, self.until, self.error = True, until, ""
        if fair_start is not None:
            self.cpu_seconds = fair_start
        self._cpu_at_push, self._push_cost = self.cpu_seconds, 0.0  # a picture soon
        self._skipped_at_play = self._skipped()

    def pause(self) -> None:
        self.playing, self.until = False, None

    def pace(self, seconds: float) -> None:
        """The pages looking at this slot redraw about every `seconds`: live snapshots no more
        often than PACE_AHEAD x that (within [PUSH_INTERVAL_S, MAX_PACE_S])."""
        self.push_interval = min(max(PACE_AHEAD * float(seconds), PUSH_INTERVAL_S), MAX_PACE_S)

    def step(self, count: int) -> None:
        """`count` steps now (the Step button), then a snapshot; pauses a playing slot."""
        self.pause()
        self.error = ""
        start = time.thread_time()
        self._guarded(lambda: self.trainer.step(int(count)))
        self.snapshot_all()
        self.cpu_seconds += time.thread_time() - start

    def set_params(self, changes: list[dict[str, Any]], version: int) -> None:
        """Per-run hyper-parameter changes (index-aligned with the runs), from the next step.
        A comparison's runs share batch_size: it goes to the comparison once. `version`
        comes back in every update, so the server knows which of its changes are in force."""
        self.params_version = version
        if isinstance(self.trainer, LockstepComparison):
            sizes = {c.pop("batch_size") for c in changes if "batch_size" in c}
            if sizes:
                self.trainer.set_params(batch_size=sizes.pop())
            for name, change in zip(self.trainer.names, changes, strict=True):
                if change:
                    self.trainer.set_params(name, **change)
        elif changes and changes[0]:
            self.trainer.set_params(**changes[0])

    # ----- the worker's loop --------------------------------------------------------------
    def advance(self) -> bool:
        """One (lock-)step, charged to this slot; True when the page should get an update."""
        start = time.thread_time()
        self._guarded(lambda: self.trainer.step(1))
        if self.until is not None and self.steps >= self.until:
            self.pause()
        due = not self.playing or picture_due(
            since_push=time.monotonic() - self._pushed_at,
            interval=self.push_interval,
            trained=self.cpu_seconds + time.thread_time() - start - self._cpu_at_push,
            cost=self._push_cost,
        )
        # Reading the skip counter syncs with the device: per step on the CPU (free there),
        # at push time elsewhere.
        if self.playing and (due or self._on_cpu) and self._skipped() > self._skipped_at_play:
            skipped = self._skipped() - self._skipped_at_play
            self.pause()
            self.error = (
                f"Paused at step {self.steps}: {skipped} step(s) had a non-finite loss and were "
                "skipped (the weights are untouched). Try a smaller s or m, then Play again."
            )
            due = True
        if due:
            before = time.thread_time()
            self.snapshot_all()
            self._push_cost = time.thread_time() - before
            self._pushed_at = time.monotonic()
            # Paced by the slot's own CPU time too, not only the clock's: with many trainers on
            # a worker the clock mostly runs for the others, and a clock-paced slot would take
            # a snapshot after nearly every one of its steps (bench_classroom.py).
            self._cpu_at_push = self.cpu_seconds + time.thread_time() - start
        self.cpu_seconds += time.thread_time() - start
        return due

    def update(self) -> Update:
        """The state now, with every snapshot taken since the previous update."""
        runs = []
        for index, run in enumerate(self.runs):
            fresh = []
            for snap in reversed(run.history):
                if snap is self._sent[index]:
                    break
                fresh.append(snap)
            if run.history:
                self._sent[index] = run.history[-1]
            runs.append(
                RunUpdate(
                    steps=run.steps,
                    elapsed=run.elapsed,
                    skipped_steps=run.skipped_steps,
                    config=run.config,
                    snapshots=tuple(reversed(fresh)),
                    history_limit=run.history.maxlen or len(run.history),
                )
            )
        return Update(
            trainer=self.id,
            steps=self.steps,
            playing=self.playing,
            error=self.error,
            cpu_seconds=self.cpu_seconds,
            runs=tuple(runs),
            until=self.until,
            params_version=self.params_version,
        )

    def snapshot_all(self) -> None:
        for run in self.runs:
            run.snapshot()

    def _skipped(self) -> int:
        return sum(run.skipped_steps for run in self.runs)

    def _guarded(self, action) -> None:
        """Run a training action; an exception pauses this slot with a message (the other
        slots of the worker go on)."""
        try:
            action()
        except Exception as error:  # shown in the trainer's page, never a traceback
            self.pause()
            text = " ".join(str(error).split()) or type(error).__name__
            self.error = f"Training stopped at step {self.steps}: {text}"
