"""The training service: worker processes that hold every session's trainers, apart from the
page's script threads (DESIGN.md §4: training in the script thread throttled it to a quarter of
a core and made every button wait for a tick).

    service = TrainingService()                      # workers start in the background
    handle = service.create(functools.partial(Run, config))
    handle.play(); ...; steps = handle.pause()      # exact: no step after the reply
    handle.runs[0].latest_snapshot()                 # never waits on a step

- Workers: max(1, cores − 1) by default (one core is left to the server, which draws), or
  $MARGINLAB_WORKERS; started with the spawn method (safe in a threaded server), one torch
  thread each. A new trainer goes to the worker holding the fewest.
- A trainer is built in its worker by a picklable zero-argument callable (a Run or a
  LockstepComparison class with its configs in functools.partial, a loader of run-file
  bytes, ...), so no model or tensor ever crosses the pipe.
- Lifecycle: `close()` ends a trainer; one that nobody touched for `ttl` seconds (a closed
  tab; $MARGINLAB_SESSION_TTL, default DEFAULT_TTL_S) is ended by the reaper thread. Workers
  exit when the server does, also on SIGKILL (see worker.py); `shutdown()` (also at exit)
  stops them and the service's threads.
- Faults: a worker that dies is started again; its trainers are marked crashed with a message
  (their pages offer Reset) and every other trainer goes on.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import multiprocessing.spawn
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from marginlab.training.service.handle import TrainerHandle
from marginlab.training.service.messages import Command, Created, Update, is_build_setting
from marginlab.training.service.pipe_worker import COMMAND_TIMEOUT_S, WORKER_NAME, PipeWorker

DEFAULT_TTL_S = 120.0  # as Streamlit keeps a closed tab's session (server.disconnectedSessionTTL)
ENV_SESSION_TTL = "MARGINLAB_SESSION_TTL"  # seconds; a short one for tests and benchmarks
CREATE_TIMEOUT_S = 600.0  # building may download a data set
_log = logging.getLogger(__name__)


def _spawn_without_main() -> None:
    """Make spawn skip re-running the server's main module in our workers (idempotent).

    spawn normally imports the parent's __main__ in the child, so that pickled functions of
    a script resolve. In a Streamlit server __main__ is the page script being run (Streamlit
    puts it in sys.modules["__main__"]): a worker would run a page at start and die. Our
    workers need nothing from __main__ (their entry and recipes live in marginlab), so for
    processes named WORKER_NAME-* the main-module entries are dropped from the preparation
    data; every other process spawns as usual.
    """
    original = multiprocessing.spawn.get_preparation_data
    if getattr(original, "_marginlab", False):
        return

    def preparation_data(name: str) -> dict[str, Any]:
        data = original(name)
        if name.startswith(WORKER_NAME):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    preparation_data._marginlab = True  # type: ignore[attr-defined]
    multiprocessing.spawn.get_preparation_data = preparation_data


def session_ttl(configured: float | None = None) -> float:
    """`configured`, else $MARGINLAB_SESSION_TTL, else DEFAULT_TTL_S (seconds, > 0)."""
    if configured is None:
        text = os.environ.get(ENV_SESSION_TTL, "").strip()
        try:
            configured = float(text) if text else DEFAULT_TTL_S
        except ValueError:
            raise ValueError(f"{ENV_SESSION_TTL} must be a number of seconds: {text!r}") from None
    if not configured > 0:  # also NaN
        raise ValueError(f"the session TTL must be a positive number of seconds: {configured}")
    return float(configured)


def worker_count(configured: int | None = None) -> int:
    """`configured`, else $MARGINLAB_WORKERS, else max(1, usable cores − 1)."""
    if configured is None:
        text = os.environ.get("MARGINLAB_WORKERS", "").strip()
        if text:
            configured = int(text)
    if configured is not None:
        if configured < 1:
            raise ValueError(f"the training service needs at least one worker, got {configured}")
        return configured
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


class TrainingService:
    """Worker processes holding trainers; `create` gives the page a TrainerHandle."""

    def __init__(
        self, workers: int | None = None, *, ttl: float | None = None, ray_address: str = ""
    ) -> None:
        self.ttl = session_ttl(ttl)
        _spawn_without_main()
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._handles: dict[str, TrainerHandle] = {}
        self._closing = threading.Event()
        # Ray actors instead of processes: `ray_address` or $MARGINLAB_RAY_ADDRESS (ray_backend.py)
        self.ray_address = ray_address or os.environ.get("MARGINLAB_RAY_ADDRESS", "").strip()
        if self.ray_address:
            from marginlab.training.service.ray_backend import ray_workers

            self.workers = ray_workers(self, worker_count(workers))
        else:
            self.workers = [PipeWorker(self, index) for index in range(worker_count(workers))]
        self._reaper = threading.Thread(target=self._reap, name="marginlab-reaper", daemon=True)
        self._reaper.start()
        atexit.register(self.shutdown)

    def create(
        self,
        build: Callable[[], Any],
        *,
        timeout: float = CREATE_TIMEOUT_S,
        worker: int | None = None,
    ) -> TrainerHandle:
        """A new trainer built by `build()` in the least loaded worker, or in `self.workers[worker]`
        (exceptions of the build, e.g. DatasetUnavailable or RunFileError, are raised here)."""
        trainer_id = uuid.uuid4().hex
        with self._lock:
            loads = {id(w): 0 for w in self.workers}
            for handle in self._handles.values():
                loads[id(handle.worker)] = loads.get(id(handle.worker), 0) + 1
            working = [w for w in self.workers if not w.broken] or self.workers
            least = min(working, key=lambda w: loads[id(w)])
        chosen = least if worker is None else self.workers[worker]
        # The server's data settings ($MARGINLAB_CACHE, $SCIKIT_LEARN_DATA, ...) as they are
        # now, not as they were when the worker started: the worker builds under them.
        settings = {k: v for k, v in os.environ.items() if is_build_setting(k)}
        command = Command(None, "create", trainer_id, (build, settings))
        created: Created = chosen.request(command, timeout)
        handle = TrainerHandle(
            trainer_id, created, lambda name, payload, wait: chosen.send(
                trainer_id, name, payload, wait
            ),
        )  # fmt: skip
        handle.worker = chosen  # type: ignore[attr-defined]
        with self._lock:
            self._handles[trainer_id] = handle
        return handle

    def handles(self) -> list[TrainerHandle]:
        with self._lock:
            return list(self._handles.values())

    def close(self, handle: TrainerHandle) -> None:
        handle.close()
        with self._lock:
            self._handles.pop(handle.id, None)

    def worker_pids(self) -> list[int]:
        return [worker.process.pid for worker in self.workers if worker.process.pid]

    def ping(self, timeout: float = COMMAND_TIMEOUT_S) -> list[dict[str, Any]]:
        """Each worker's process id and the trainers it holds (waits for every worker)."""
        return [w.request(Command(None, "ping", "", None), timeout) for w in self.workers]

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every worker and the service's threads (idempotent)."""
        if self._closing.is_set():
            return
        self._closing.set()
        for worker in self.workers:
            worker.stop(timeout)
        if self._reaper is not threading.current_thread():
            self._reaper.join(timeout)
        atexit.unregister(self.shutdown)

    # ----- called by the workers' reader threads ---------------------------------------------
    def _on_update(self, update: Update) -> None:
        with self._lock:
            handle = self._handles.get(update.trainer)
        if handle is not None:
            handle.apply_update(update)

    def _on_worker_lost(self, worker: PipeWorker, exitcode: int | None) -> None:
        with self._lock:
            lost = [h for h in self._handles.values() if h.worker is worker]  # type: ignore[attr-defined]
            for handle in lost:
                self._handles.pop(handle.id, None)
        for handle in lost:
            handle.mark_crashed(
                f"The training worker stopped unexpectedly (exit code {exitcode}) at step "
                f"{handle.steps}; this run is lost. Press Reset to start a new one."
            )

    def _reap(self) -> None:
        """End trainers nobody has looked at for `ttl` seconds (their tab is gone)."""
        while not self._closing.wait(min(5.0, self.ttl / 4)):
            now = time.monotonic()
            for handle in self.handles():
                if now - handle.last_touch > self.ttl:
                    try:
                        self.close(handle)
                    except Exception:  # the thread goes on: the other trainers still end
                        _log.exception("ending trainer %s failed", handle.id)
