"""One session's trainer as the page holds it: following a shared run, or a private trainer.

A `SessionHandle` has the surface of a `TrainerHandle` (runs, steps, playing, error, play,
pause, step, set_params, save, close, touch, ...), so a page does not care which it holds.

Following a shared run (sharing.py):
- A new session starts paused: its view is frozen at the shared run's latest snapshot.
- Play: the view follows the shared trainer live (which plays while anyone follows it live).
  After a Pause, Play resumes following the shared run where it is NOW, not where this view
  was paused (the choice: a paused student rejoins the class; nobody's trainer waits for one).
- Pause freezes this session's view only (exact: the step shown stays), the shared trainer
  goes on for the others.
- Anything that alters training forks: Step, "play until", Reset, or a hyper-parameter change
  (s, m, lr, ...). While following live, a change forks at once (in the background; the view
  stays live until the fork is there); while paused, the change is kept (the frozen view shows
  the new values) and the fork happens at the next Play or Step. A fork starts from the shared
  trainer's current state (weights, optimiser, schedules, sampler position, history) and
  goes on exactly as that trainer would have alone (tests/test_sharing.py).
- When every private place is taken the session waits in a queue (`queue_position`,
  `notice`) and keeps following the shared run meanwhile.
- Save while following saves the shared trainer's current state.
- A fork asked for while following live can land after the user pressed Pause: the private
  trainer then stays paused and the page keeps the view frozen at Pause (the step shown at
  Pause stays) until the next Play or Step, which go on from the fork. A Pause that comes
  while the fork is being switched in stops it too: the fork starts playing only if no Pause
  came since the switch (`play_fork`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from marginlab.training.config import RunConfig
from marginlab.training.service.handle import RunView, TrainerHandle, param_changes

if TYPE_CHECKING:
    from marginlab.training.service.sharing import SharedRun, SharingService

_SWITCH = 1_000_000_000  # `version` jumps by this at a switch of trainer, so it never repeats


class SessionHandle:
    """A page's trainer: a shared run it follows (`shared`), or its own (`private`)."""

    def __init__(self, owner: SharingService, build: Callable[[], Any], group: SharedRun) -> None:
        self.id = uuid.uuid4().hex
        self.build = build
        self.group: SharedRun | None = group
        self.private: TrainerHandle | None = None
        self.worker: int | None = None  # the private trainer's worker (its place in capacity)
        self.closed = False
        self.last_touch = time.monotonic()
        self.wanted: list[RunConfig] | None = None  # changes to apply at the fork
        self.forked_at: int | None = None  # the shared run's step when this session forked
        self.pending = ""  # "fork" or "fresh" while waiting for a private place
        self.waiting_message = ""
        self.redraw_seconds = 0.0  # how often its page redraws (0: not said yet)
        self._owner = owner
        self._lock = threading.RLock()
        self.forking = threading.Lock()  # held while a private trainer is made for it
        self._frozen: list[RunView] | None = [view.frozen() for view in group.handle.runs]
        self._switches = 0
        self._pauses = 0  # Pause presses so far

    # ----- what the page reads ------------------------------------------------------------
    @property
    def target(self) -> TrainerHandle:
        return self.private if self.private is not None else self.group.handle  # type: ignore[union-attr]

    @property
    def shared(self) -> bool:
        return self.private is None

    @property
    def live(self) -> bool:
        """Following the shared run as it trains (not frozen by a Pause)."""
        return self.private is None and self._frozen is None

    @property
    def runs(self) -> list[RunView]:
        frozen = self._frozen
        return frozen if frozen is not None else self.target.runs

    @property
    def _held(self) -> bool:
        """A fork landed while paused: the frozen view stays shown until Play or Step."""
        return self.private is not None and self._frozen is not None

    @property
    def steps(self) -> int:
        return self.runs[0].steps

    @property
    def kind(self) -> str:
        return self.target.kind

    @property
    def playing(self) -> bool:
        if self.private is not None:
            return self.private.playing
        return self.target.playing if self.live else False

    @property
    def until(self) -> int | None:
        return self.private.until if self.private is not None else None

    @property
    def error(self) -> str:
        return self.target.error or self.waiting_message

    @property
    def crashed(self) -> str:
        return self.target.crashed

    @property
    def alive(self) -> bool:
        return not self.closed and self.target.alive

    @property
    def cpu_seconds(self) -> float:
        return self.target.cpu_seconds

    @property
    def worker_pid(self) -> int:
        return self.target.worker_pid

    @property
    def version(self) -> int:
        return self._switches * _SWITCH + self.target.version + (self._frozen is not None)

    @property
    def queue_position(self) -> int:
        """1-based place in the queue for a private trainer; 0 when not waiting."""
        return self._owner.slots.position(self) if self.pending else 0

    @property
    def notice(self) -> str:
        """What the page should say about sharing and waiting ('' when nothing)."""
        position = self.queue_position
        if position:
            return (
                f"Waiting for a training place of your own: number {position} in the queue "
                f"(the server holds {self._owner.slots.limit} private runs per worker). The "
                "shared run stays live meanwhile."
            )
        if self.private is None:
            others = len(self.group.followers) - 1  # type: ignore[union-attr]
            if others > 0:
                return (
                    f"Shared run: {others} other session{'s' if others != 1 else ''} on this "
                    "setup see the same training. Change a setting, Step or Reset for a run "
                    "of your own."
                )
        return ""

    def touch(self) -> None:
        self.last_touch = time.monotonic()
        self.target.touch()

    def pace(self, seconds: float) -> None:
        """The page redraws about every `seconds`. A shared run is paced by the quickest of
        the pages that follow it live."""
        self.redraw_seconds = seconds
        if self.private is not None or self.group is None:
            self.target.pace(seconds)
            return
        live = [s.redraw_seconds for s in list(self.group.followers) if s.live and s.redraw_seconds]
        self.group.handle.pace(min(live, default=seconds))

    # ----- commands -------------------------------------------------------------------------
    def play(self, until: int | None = None) -> None:
        if not self.alive:
            return
        if self.private is not None:
            self._release_view()
            self.private.play(until)
            return
        self.waiting_message = ""
        if until is not None or self.wanted is not None:
            self._owner.fork(self, then=lambda handle: self.play(until))  # shows the fork
        if self.private is None:  # no fork wanted, or waiting for a place: follow live
            with self._lock:
                self._frozen = None
            self._owner.settle(self.group)  # type: ignore[arg-type]

    def pause(self) -> int:
        with self._lock:
            self._pauses += 1  # a fork switched in meanwhile must not start playing (play_fork)
            private = self.private
        if private is not None:
            at = private.pause()
            return self.steps if self._held else at
        with self._lock:
            if self._frozen is None:
                self._frozen = [view.frozen() for view in self.group.handle.runs]  # type: ignore[union-attr]
                for view, config in zip(self._frozen, self.wanted or (), strict=False):
                    view.config = config  # a change waiting for its fork: shown already
        self._owner.settle(self.group)  # type: ignore[arg-type]
        return self.steps

    def step(self, count: int) -> int:
        if self.alive and self.private is None:
            self._owner.fork(self)
        if self.private is not None:
            self._release_view()
            return self.private.step(count)
        # Waiting for a place: said as an error, so a page's fast-forward loop stops.
        self.waiting_message = f"Step needs a run of your own. {self.notice}"
        return self.steps

    def set_params(self, configs: Sequence[RunConfig]) -> bool:
        if self.private is not None:
            changed = self.private.set_params(configs)
            with self._lock:
                for view, config in zip(self._frozen if self._held else (), configs, strict=False):
                    view.config = config  # the held view is drawn with the values now set
            return changed
        shared = [view.config for view in self.group.handle.runs]  # type: ignore[union-attr]
        changes = [param_changes(now, wanted) for now, wanted in zip(shared, configs, strict=True)]
        if not any(changes):
            with self._lock:
                self.wanted = None
            return False
        new = [now.with_changes(**c) for now, c in zip(shared, changes, strict=True)]  # validates
        with self._lock:
            if self.wanted == new:
                return False
            self.wanted = new
            for view, config in zip(self._frozen or (), new, strict=False):
                view.config = config
        if self.live:
            self._owner.fork(self, background=True)
        return True

    def save(self) -> bytes:
        return self.target.save()

    def query(self, index: int, look: Callable[[Any], Any]) -> Any:
        """`look(run)` in the worker, on the trainer this session shows (see TrainerHandle)."""
        return self.target.query(index, look)

    def reset(self) -> None:
        """Start afresh: a private trainer at step 0 (a Reset alters training for this session
        only); while waiting for a place, the view follows the shared run."""
        self._owner.reset(self)

    def close(self) -> None:
        self._owner.close(self)

    def _release_view(self) -> None:
        """Show the private trainer again (after a fork that landed while paused)."""
        with self._lock:
            if self._held:
                self._frozen = None
                self._switches += 1

    # ----- called by SharingService -----------------------------------------------------------
    def become_private(self, handle: TrainerHandle, worker: int) -> int | None:
        """Switch to `handle`. Following live, the fork should play: returns the Pause count
        to give `play_fork` (None: the session was paused, and the fork stays paused)."""
        with self._lock:
            was_live = self._frozen is None
            self.private, self.worker = handle, worker
            self.forked_at = handle.steps if self.pending == "fork" else None
            # Paused (frozen) while the fork was made: keep showing the paused view.
            if self.pending != "fork":
                self._frozen = None
            self.group, self.wanted = None, None
            self.pending, self.waiting_message = "", ""
            self._switches += 1
            return self._pauses if was_live else None

    def play_fork(self, handle: TrainerHandle, pauses: int) -> None:
        """Play the fork that replaced a live view, unless Pause was pressed since it was
        switched in (`pauses` presses then): that Pause already stopped it, exactly."""
        with self._lock:
            if self._pauses == pauses and self.private is handle:
                handle.play()

    def follow(self, group: SharedRun) -> None:
        """Follow `group`, paused (a new shared trainer after a crash, or a Reset waiting)."""
        with self._lock:
            self.group, self.private, self.worker = group, None, None
            self._frozen = [view.frozen() for view in group.handle.runs]
            self._switches += 1
