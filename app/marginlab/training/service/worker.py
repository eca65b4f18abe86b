"""A training worker: a process that holds the trainers of many sessions and steps them.

Started by `TrainingService` with the spawn method (no fork of a threaded server), one torch
thread each (STREAMLIT.md: one thread per process more than doubled the total throughput of
four trainers on two cores). The loop: handle every command waiting in the pipe, then give one
step to the playing trainer that has used the least CPU time; with nothing playing it sleeps
in `poll`, so paused trainers cost nothing.

It exits when the server does, also when the server is killed with SIGKILL: the server holds
the only other end of the pipe, so its death shows here as end-of-file (checked between any two
steps), and the parent process id is checked too. Nothing else is left: no thread is started,
no shared memory is used (messages.py).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import tempfile
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from marginlab.training.memory import release_freed_memory
from marginlab.training.service.messages import Command, Created, Reply, is_build_setting
from marginlab.training.service.slot import Slot, Trainer

IDLE_POLL_S = 1.0  # with nothing playing: how often the parent is looked for
WORKER_NICENESS = 19  # the lowest priority: training gets the CPU nobody else wants


def worker_main(conn: Connection, parent_pid: int) -> None:
    """The worker process's entry point (must be importable: spawn pickles it by name)."""
    torch.set_num_threads(1)
    # Training is background work: where the cores are short, the server (and a browser on
    # the same machine) answers clicks first. On a quiet machine the worker still gets a
    # whole idle core: niceness only matters while something else wants the CPU.
    with contextlib.suppress(OSError, AttributeError):
        os.nice(WORKER_NICENESS)
    # Ctrl-C in the server's terminal reaches the whole process group: the server decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = 0
    try:
        Worker(conn, parent_pid).serve()
    except BaseException:
        traceback.print_exc()
        code = 1
    # Leave at once: the interpreter's teardown (freeing every tensor, torch's exit hooks)
    # took seconds of CPU on a busy machine, and nothing here needs flushing.
    os._exit(code)


class Worker:
    """The trainers of one process and the loop that steps them."""

    def __init__(self, conn: Connection, parent_pid: int) -> None:
        self.conn = conn
        self.parent_pid = parent_pid
        self.slots: dict[str, Slot] = {}

    def serve(self) -> None:
        while True:
            playing = [slot for slot in self.slots.values() if slot.playing]
            try:
                if self.conn.poll(0 if playing else IDLE_POLL_S):
                    command = self.conn.recv()
                    if command.name == "exit":
                        return
                    self.handle(command)
                    continue  # every waiting command before the next step: Pause is exact
            except (EOFError, OSError):
                return  # the server is gone
            if os.getppid() != self.parent_pid:
                return
            if playing:
                slot = min(playing, key=lambda s: s.cpu_seconds)
                if slot.advance():
                    self.send(slot.update())

    def handle(self, command: Command) -> None:
        try:
            value = self._dispatch(command)
        except Exception as error:  # reported to the caller, the worker goes on
            if command.request is None:
                slot = self.slots.get(command.trainer)
                if slot is not None:
                    slot.error = " ".join(str(error).split()) or type(error).__name__
                    self.send(slot.update())
                return
            self.send(Reply(command.request, False, _picklable(error)))
            return
        if command.request is not None:
            self.send(Reply(command.request, True, value))

    def send(self, message: Any) -> None:
        # If the server is gone, serve() notices at its next poll.
        with contextlib.suppress(BrokenPipeError, EOFError, OSError):
            self.conn.send(message)

    def _dispatch(self, command: Command) -> Any:
        name, trainer_id, payload = command.name, command.trainer, command.payload
        if name == "create":
            return self._create(trainer_id, payload)
        if name == "close":
            if self.slots.pop(trainer_id, None) is not None:
                # The ended trainer's model, optimiser, probe buffers and history are free
                # now, but glibc keeps the pages (they sit between live allocations): without
                # a trim a worker stayed 20-50 MB up per round of six closed sessions
                # (benchmarks/bench_memory.py). Once per close, ~1 ms, so no rate limit.
                release_freed_memory(min_interval=0.0)
            return None
        if name == "ping":  # what this worker holds (tests, benchmarks)
            return {"pid": os.getpid(), "trainers": sorted(self.slots)}
        slot = self.slots[trainer_id]
        if name == "play":
            if not slot.playing:
                others = [s.cpu_seconds for s in self.slots.values() if s.playing]
                slot.play(payload, min(others, default=None))
            else:
                slot.until = payload
        elif name == "pause":
            slot.pause()
            slot.snapshot_all()  # the exact state the page will show as Paused
        elif name == "pace":
            slot.pace(float(payload))
        elif name == "step":
            slot.step(int(payload))
        elif name == "set_params":
            version, changes = payload
            slot.set_params([dict(change) for change in changes], version)
        elif name == "save":
            return _run_file_bytes(slot.trainer)
        elif name == "query":
            index, look = payload
            return look(slot.runs[int(index)])
        else:
            raise ValueError(f"unknown command {name!r}")
        return slot.update()

    def _create(
        self, trainer_id: str, payload: tuple[Callable[[], Trainer], dict[str, str]]
    ) -> Created:
        build, settings = payload
        _use_settings(settings)
        slot = Slot(trainer_id, build())
        for run in slot.runs:
            run.latest_snapshot()  # step 0 (or the loaded run's last): something to draw
        self.slots[trainer_id] = slot
        return Created(slot.kind, slot.infos(), slot.update(), worker_pid=os.getpid())


def _use_settings(settings: dict[str, str]) -> None:
    """Take the server's build settings (where data is cached, ...) for this build."""
    for name in [name for name in os.environ if is_build_setting(name)]:
        if name not in settings:
            del os.environ[name]
    os.environ.update(settings)


def _run_file_bytes(trainer: Trainer) -> bytes:
    """The trainer as a run file (training.run_files), as bytes for the pipe."""
    from marginlab.training.comparison import LockstepComparison
    from marginlab.training.run_files import save_comparison, save_run

    with tempfile.TemporaryDirectory(prefix="marginlab-save-") as folder:
        path = Path(folder) / "run.pt"
        if isinstance(trainer, LockstepComparison):
            save_comparison(trainer, path)
        else:
            save_run(trainer, path)
        return path.read_bytes()


def _picklable(error: Exception) -> Exception:
    """The exception itself when it survives pickling (the caller can catch its type)."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(" ".join(str(error).split()) or type(error).__name__)
    return error
