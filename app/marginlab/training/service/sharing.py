"""Shared runs: the sessions of a class on the same setup follow one trainer.

Thirty students on one lesson preset would train the very same run thirty times: same data,
seed, initial weights and batch order (a run is reproducible bit for bit). Here they follow
one shared trainer and see the same picture; the one who changes something gets a private
trainer forked from the shared one (session.py says what each button does).

    service = SharingService()                  # or SharingService(TrainingService(...))
    handle = service.create(new_run(config))    # a SessionHandle, like a TrainerHandle
    service.load().line()                       # "Server: 1 worker · private trainers ..."

- Identical setup = an identical recipe: the bytes of the pickled zero-argument builder (a
  Run or comparison with its configs, a run file's bytes, a Faces subset...). A recipe builds
  the same trainer bit for bit, so equal recipes are the same run.
- The shared trainer plays while at least one session follows it live, and pauses (costing
  nothing) when none does; it ends when its last session has gone.
- Private places are limited per worker (capacity.py); who waits is served first come first
  served by a background thread, which also ends sessions nobody polled for the TTL (their
  tab is gone) so that their places free up.
- $MARGINLAB_SHARED_RUNS=0 (or share=False) turns sharing off: every session trains its own
  run as on a personal machine, without a limit or a queue.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from marginlab.training.service.builders import forked
from marginlab.training.service.capacity import (
    PrivateSlots,
    ServerLoad,
    private_per_worker,
    resident_bytes,
)
from marginlab.training.service.handle import TrainerHandle
from marginlab.training.service.service import CREATE_TIMEOUT_S, TrainingService
from marginlab.training.service.session import SessionHandle

ENV_SHARED_RUNS = "MARGINLAB_SHARED_RUNS"
_log = logging.getLogger(__name__)
GRANT_POLL_S = 2.0  # how often the queue and the session TTL are looked at without a nudge


def setup_key(build: Callable[[], Any]) -> str:
    """The identity of a setup: a hash of its pickled recipe."""
    return hashlib.sha256(pickle.dumps(build, protocol=pickle.HIGHEST_PROTOCOL)).hexdigest()


@dataclass(eq=False)
class SharedRun:
    """One shared trainer and the sessions that follow it."""

    key: str
    build: Callable[[], Any]
    handle: TrainerHandle
    followers: set[SessionHandle] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one settle at a time


class SharingService:
    """A TrainingService whose sessions share the runs they have in common."""

    def __init__(
        self,
        service: TrainingService | None = None,
        *,
        share: bool | None = None,
        private_per_worker_limit: int | None = None,
    ) -> None:
        self.service = service if service is not None else TrainingService()
        if share is None:
            share = os.environ.get(ENV_SHARED_RUNS, "1").strip() not in ("0", "false", "no")
        self.share = share
        self.slots = PrivateSlots(len(self.service.workers), private_per_worker(
            private_per_worker_limit
        ))  # fmt: skip
        self._lock = threading.RLock()
        self._groups: dict[str, SharedRun] = {}
        self._sessions: dict[str, SessionHandle] = {}
        self._creating: dict[str, threading.Lock] = {}
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._granter = threading.Thread(target=self._serve, name="marginlab-queue", daemon=True)
        self._granter.start()

    # ----- sessions ---------------------------------------------------------------------------
    def create(
        self, build: Callable[[], Any], *, timeout: float = CREATE_TIMEOUT_S
    ) -> SessionHandle | TrainerHandle:
        """The session's trainer for `build`: it follows the shared run of that setup (one is
        started if there is none). With sharing off, a TrainerHandle of its own."""
        if not self.share:
            return self.service.create(build, timeout=timeout)
        while True:
            session = SessionHandle(self, build, self._group(build, timeout))
            if self._join(session):
                break
        with self._lock:
            self._sessions[session.id] = session
        return session

    def close(self, handle: SessionHandle | TrainerHandle) -> None:
        if isinstance(handle, TrainerHandle):
            self.service.close(handle)
            return
        with self._lock:
            if handle.closed:
                return
            handle.closed = True
            self._sessions.pop(handle.id, None)
        self.slots.withdraw(handle)
        self._leave(handle)
        self._wake.set()

    def reset(self, session: SessionHandle) -> None:
        """A private trainer at step 0 for `session`, or, while every place is taken, the
        shared run of its setup (paused) and a place in the queue."""
        self._leave(session)
        while True:
            session.follow(self._group(session.build, CREATE_TIMEOUT_S))
            if self._join(session):
                break
        if session.group.handle.steps > 0:  # type: ignore[union-attr]
            self.fork(session, fresh=True)
        # else the shared run is where a fresh one would be: following it is the same run

    def handles(self) -> list[SessionHandle]:
        with self._lock:
            return list(self._sessions.values())

    # ----- forks and the shared trainer's transport ---------------------------------------------
    def fork(
        self,
        session: SessionHandle,
        then: Callable[[TrainerHandle], Any] | None = None,
        *,
        background: bool = False,
        fresh: bool = False,
    ) -> None:
        """Give `session` a private trainer: forked from its shared run (or, `fresh`, built
        anew). Now, when a place is free and nobody waits, then `then(handle)`; else it waits
        in the queue (and the background thread forks it in its turn)."""
        session.pending = "fresh" if fresh or session.pending == "fresh" else "fork"
        first = self.slots.first() is session
        worker = None if background else self.slots.reserve(queued=session if first else None)
        if worker is None:
            self.slots.enqueue(session)
            self._wake.set()
            return
        self._grant(session, worker)
        if then is not None and session.private is not None:
            then(session.private)

    def settle(self, group: SharedRun) -> None:
        """The shared trainer plays while a session follows it live, pauses when none does,
        and ends with its last session."""
        with group.lock:
            with self._lock:
                followers = list(group.followers)
                if not followers:
                    if self._groups.get(group.key) is group:
                        del self._groups[group.key]
                    self.service.close(group.handle)
                    return
            if not group.handle.alive:
                return
            if any(session.live for session in followers):
                if not group.handle.playing:
                    group.handle.play()
            elif group.handle.playing:
                group.handle.pause()

    def load(self) -> ServerLoad:
        """The server's load now (for the About page or a status line)."""
        with self._lock:
            groups = [g for g in self._groups.values() if g.handle.alive]
            sessions = list(self._sessions.values())
        playing = sum(g.handle.playing for g in groups) + sum(
            s.private.playing for s in sessions if s.private is not None
        )
        pids = [os.getpid(), *self.service.worker_pids()]
        return ServerLoad(
            workers=len(self.service.workers),
            private_per_worker=self.slots.limit,
            private=tuple(self.slots.used),
            shared_runs=len(groups),
            following=sum(len(g.followers) for g in groups),
            playing=playing,
            waiting=self.slots.waiting,
            rss_bytes=resident_bytes(pids),
        )

    def shutdown(self, timeout: float = 5.0, *, service: bool = True) -> None:
        """End every session and the queue thread, then (`service`) the training service."""
        for session in self.handles():
            self.close(session)
        self._closing.set()
        self._wake.set()
        if self._granter is not threading.current_thread():
            self._granter.join(timeout)
        if service:
            self.service.shutdown(timeout)

    # ----- internals ------------------------------------------------------------------------------
    def _group(self, build: Callable[[], Any], timeout: float) -> SharedRun:
        """The live shared run of this setup, started if there is none (once, also when
        several sessions ask at the same moment)."""
        key = setup_key(build)
        with self._lock:
            creating = self._creating.setdefault(key, threading.Lock())
        with creating:
            with self._lock:
                group = self._groups.get(key)
            if group is not None and group.handle.alive:
                return group
            group = SharedRun(key, build, self.service.create(build, timeout=timeout))
            with self._lock:
                self._groups[key] = group
            return group

    def _join(self, session: SessionHandle) -> bool:
        """Seat `session` in its group, unless the group ended in the meantime."""
        with self._lock:
            if self._groups.get(session.group.key) is not session.group:  # type: ignore[union-attr]
                return False
            session.group.followers.add(session)  # type: ignore[union-attr]
            return True

    def _grant(self, session: SessionHandle, worker: int) -> None:
        """Make the private trainer of `session` on `worker` (a place reserved for it)."""
        with session.forking:  # one fork per session, whoever asks (page or queue thread)
            self._make_private(session, worker)

    def _make_private(self, session: SessionHandle, worker: int) -> None:
        group = session.group
        try:
            if session.closed or group is None or session.private is not None:
                raise _Gone
            if session.pending == "fresh":
                handle = self.service.create(session.build, worker=worker)
            else:
                state = group.handle.save()  # the shared trainer between two of its steps
                handle = self.service.create(forked(group.build, state), worker=worker)
            if session.wanted:
                handle.set_params(session.wanted)
        except _Gone:
            self.slots.release(worker)
            return
        except Exception as error:  # a crashed worker, a failed build: said on the page
            self.slots.release(worker)
            session.pending = ""
            session.waiting_message = f"No run of your own could be made: {error}"
            return
        with self._lock:
            group.followers.discard(session)
            if session.closed:  # closed while the fork was made
                self.service.close(handle)
                self.slots.release(worker)
                return
            pauses = session.become_private(handle, worker)
        self.settle(group)
        if pauses is not None:
            session.play_fork(handle, pauses)

    def _leave(self, session: SessionHandle) -> None:
        """Drop the session's trainer: its place, or its seat in a shared run."""
        group, private, worker = session.group, session.private, session.worker
        if private is not None:
            self.service.close(private)
            if worker is not None:
                self.slots.release(worker)
            session.private, session.worker = None, None
        if group is not None:
            with self._lock:
                group.followers.discard(session)
            self.settle(group)

    def _serve(self) -> None:
        """Background: fork the waiting sessions in turn, end the sessions nobody polls."""
        while not self._closing.is_set():
            self._wake.wait(GRANT_POLL_S)
            self._wake.clear()
            if self._closing.is_set():
                return
            try:  # one failure (a worker gone mid-close) must not end the queue and the TTL
                self._reap()
                while (session := self.slots.first()) is not None:
                    worker = self.slots.reserve(queued=session)
                    if worker is None:
                        break
                    self._grant(session, worker)
            except Exception:
                _log.exception("the sharing queue thread caught an error and goes on")

    def _reap(self) -> None:
        now = time.monotonic()
        for session in self.handles():
            private = session.private
            try:
                if now - session.last_touch > self.service.ttl:
                    self.close(session)
                elif private is not None and not private.alive and session.worker is not None:
                    self.slots.release(session.worker)  # its worker died: the place is free
                    session.worker = None
            except Exception:  # the other sessions are still looked at
                _log.exception("ending session %s failed", session.id)


class _Gone(Exception):
    """The session closed while it waited."""
