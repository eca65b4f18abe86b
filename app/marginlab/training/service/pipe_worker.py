"""The service's end of one worker process (service.py): its pipe, its pending requests, the
thread that reads its replies and updates, and its restart after a crash. ray_backend.RayWorker
is the same with a Ray actor at the other end.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from marginlab.training.service.messages import Command, Reply, Update
from marginlab.training.service.worker import worker_main

if TYPE_CHECKING:  # the service owns its workers; a worker calls back into it
    from marginlab.training.service.service import TrainingService

COMMAND_TIMEOUT_S = 120.0  # one step of a six-run comparison on a busy machine, with margin
# A worker that dies this soon after its start, this many times in a row, is not restarted
# again (a crash loop: e.g. a server whose main module cannot be imported by spawn).
QUICK_DEATH_S = 10.0
MAX_QUICK_DEATHS = 3
WORKER_NAME = "marginlab-worker"  # process names; service.py spawns these without __main__


class WorkerCrashed(RuntimeError):
    """The worker holding a trainer died; the trainer is gone (Reset makes a new one)."""


class PipeWorker:
    """The server's end of one worker process: its pipe, its pending requests, its reader."""

    def __init__(self, service: TrainingService, index: int) -> None:
        self.service = service
        self.index = index
        self._send_lock = threading.Lock()  # one message at a time into the pipe
        self._pending_lock = threading.Lock()  # the requests waiting for a reply
        self._requests = itertools.count(1)
        self._pending: dict[int, Future] = {}
        self._quick_deaths = 0
        self.broken = ""  # why this worker is not restarted any more
        self._start()

    def _start(self) -> None:
        context = self.service._context
        here, there = context.Pipe(duplex=True)
        self.process = context.Process(
            target=worker_main,
            args=(there, os.getpid()),
            name=f"{WORKER_NAME}-{self.index}",
            daemon=True,  # and multiprocessing ends it at a normal interpreter exit
        )
        self.started = time.monotonic()
        self.process.start()
        there.close()  # the worker's end lives in the worker only: our death is its EOF
        self.conn = here
        self._listen()

    def _listen(self) -> None:
        """Read this worker's messages in a thread (its end-of-file is the worker's death)."""
        self.reader = threading.Thread(
            target=self._read, args=(self.conn, self.process), name=f"{self.process.name}-reader",
            daemon=True,
        )  # fmt: skip
        self.reader.start()

    def send(self, trainer_id: str, name: str, payload: Any, wait: bool) -> Any:
        """Send a command; with `wait`, block until its reply and return its value."""
        if wait:
            return self.request(Command(None, name, trainer_id, payload), COMMAND_TIMEOUT_S)
        # A dead worker is reported by the reader thread.
        with self._send_lock, contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send(Command(None, name, trainer_id, payload))
        return None

    def request(self, command: Command, timeout: float) -> Any:
        """Send `command` with a fresh request id and wait for its reply (the worker's
        exception is raised here)."""
        if self.broken:
            raise WorkerCrashed(self.broken)
        future: Future = Future()
        with self._pending_lock:
            request_id = next(self._requests)
            self._pending[request_id] = future
        try:
            with self._send_lock:
                self.conn.send(Command(request_id, command.name, command.trainer, command.payload))
        except (BrokenPipeError, OSError):
            with self._pending_lock:
                self._pending.pop(request_id, None)
            raise WorkerCrashed("the training worker is not running") from None
        return future.result(timeout)

    def _read(self, conn: Any, process: Any) -> None:
        """Route the worker's messages; when it dies, tell its trainers and start another.
        (Only the pending-requests lock is taken here, never the send lock: a sender blocked
        on a full pipe must not keep this thread from emptying the other direction.)"""
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # an unpicklable message: skip it, keep the pipe
                continue
            if isinstance(message, Reply):
                with self._pending_lock:
                    future = self._pending.pop(message.request, None)
                if future is None:
                    continue
                if message.ok:
                    future.set_result(message.value)
                else:
                    future.set_exception(message.value)
            elif isinstance(message, Update):
                self.service._on_update(message)
        process.join(1.0)
        closing = self.service._closing.is_set()
        if not closing:  # first the handles, so a caller woken below finds them crashed
            self.service._on_worker_lost(self, process.exitcode)
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(WorkerCrashed(f"the training worker died ({process.exitcode})"))
        if closing:
            return
        quick = time.monotonic() - self.started < QUICK_DEATH_S
        self._quick_deaths = self._quick_deaths + 1 if quick else 0
        if self._quick_deaths >= MAX_QUICK_DEATHS:
            self.broken = f"the training worker keeps dying at start (exit code {process.exitcode})"
            return
        self._start()  # a fresh worker for new trainers; the other workers never noticed

    def stop(self, timeout: float) -> None:
        """Ask the worker to exit, wait for it (kill it if it does not), close the pipe."""
        with self._send_lock, contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send(Command(None, "exit", "", None))
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        if self.reader is not threading.current_thread():
            self.reader.join(timeout)  # the worker's exit is the reader's end-of-file
        self.conn.close()
