"""Training workers as Ray actors: a classroom server hands its trainers to a Ray cluster.

    pip install -e .[cluster]
    MARGINLAB_RAY_ADDRESS=auto MARGINLAB_WORKERS=8 streamlit run app/main.py

$MARGINLAB_RAY_ADDRESS is what `ray.init(address=...)` takes ("auto": the cluster this machine
belongs to, "ray://head:10001": a remote one), or "local" for a Ray started here. Unset (the
default), the workers are plain processes and Ray is never imported.

An actor runs the very worker loop of a worker process (worker.Worker): the same scheduling,
exact Pause, snapshot pacing and fault handling; only the pipe differs. The server sends a
command as an actor call (pickled by the standard pickler, as on the pipe, with a sequence
number: a threaded actor may run two calls out of order, the actor puts them back in order);
the worker's messages come back by long-polling `drain`. The server's life ends its actors:
Ray ends the actors a driver owns when the driver exits, also on SIGKILL. A dead actor is a
dead worker: the service starts another and tells the sessions whose trainers it held.

Workers on GPU nodes: $MARGINLAB_RAY_GPUS_PER_WORKER (e.g. 1) asks Ray for that many GPUs per
actor, so trainers with device "auto" land on them and train there. The cluster's nodes need
this project's requirements installed; the marginlab package itself is shipped to them by Ray
(runtime_env py_modules) when joining a cluster.
"""

from __future__ import annotations

import itertools
import os
import pickle
import queue
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from marginlab.training.service.pipe_worker import PipeWorker
from marginlab.training.service.worker import Worker

if TYPE_CHECKING:  # the service builds these workers and hands itself in
    from marginlab.training.service.service import TrainingService

ENV_RAY_ADDRESS = "MARGINLAB_RAY_ADDRESS"
ENV_GPUS = "MARGINLAB_RAY_GPUS_PER_WORKER"
DRAIN_WAIT_S = 0.5  # one long poll: how long an idle drain waits in the actor
_EMPTY = object()


def ray_address() -> str:
    """$MARGINLAB_RAY_ADDRESS, stripped ('' when unset: no Ray)."""
    return os.environ.get(ENV_RAY_ADDRESS, "").strip()


def connect(address: str) -> Any:
    """Ray, joined to the cluster at `address` (or started here for "local"); once per process,
    and not at all when the caller already ran ray.init (a test's local Ray)."""
    try:
        import ray
    except ImportError:
        raise RuntimeError(
            f"{ENV_RAY_ADDRESS}={address} needs Ray: pip install -e .[cluster]"
        ) from None
    if not ray.is_initialized():
        if address == "local":
            ray.init(log_to_driver=False)
        else:
            package = str(Path(__file__).resolve().parents[2])  # app/marginlab
            ray.init(address=address, log_to_driver=False, runtime_env={"py_modules": [package]})
    return ray


class WorkerActor:
    """Inside the actor: the worker loop in a thread, its pipe replaced by two queues."""

    def __init__(self) -> None:
        torch.set_num_threads(1)  # as a worker process (worker.py)
        self.end = ActorEnd()
        self._thread = threading.Thread(target=self._serve, name="marginlab-worker", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            Worker(self.end, os.getppid()).serve()  # type: ignore[arg-type]
        finally:
            self.end.finished.set()

    def push(self, sequence: int, data: bytes) -> None:
        self.end.deliver(sequence, pickle.loads(data))

    def drain(self, wait: float) -> bytes | None:
        """The worker's messages since the last drain (waits up to `wait` for the first);
        None once the loop has ended and everything was read."""
        messages = self.end.take(wait)
        if not messages and self.end.finished.is_set():
            return None
        return pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)

    def wait_finished(self, timeout: float) -> bool:
        return self.end.finished.wait(timeout)

    def where(self) -> tuple[int, str]:
        return os.getpid(), socket.gethostname()


class ActorEnd:
    """The worker's end of the pipe inside an actor: `poll`, `recv`, `send` as on a
    multiprocessing Connection."""

    def __init__(self) -> None:
        self.finished = threading.Event()
        self._inbox: queue.Queue = queue.Queue()
        self._outbox: queue.Queue = queue.Queue()
        self._early: dict[int, Any] = {}
        self._next = 0
        self._order = threading.Lock()
        self._held: Any = _EMPTY

    def deliver(self, sequence: int, message: Any) -> None:
        with self._order:
            self._early[sequence] = message
            while self._next in self._early:
                self._inbox.put(self._early.pop(self._next))
                self._next += 1

    def poll(self, timeout: float = 0.0) -> bool:
        if self._held is _EMPTY:
            try:
                self._held = (
                    self._inbox.get(timeout=timeout) if timeout else self._inbox.get_nowait()
                )
            except queue.Empty:
                return False
        return True

    def recv(self) -> Any:
        if self._held is _EMPTY:
            self._held = self._inbox.get()
        message, self._held = self._held, _EMPTY
        return message

    def send(self, message: Any) -> None:
        self._outbox.put(message)

    def take(self, wait: float) -> list[Any]:
        try:
            messages = [self._outbox.get(timeout=wait)]
        except queue.Empty:
            return []
        while True:
            try:
                messages.append(self._outbox.get_nowait())
            except queue.Empty:
                return messages


class RayConnection:
    """The server's end: `send` is an actor call, `recv` reads what long polls brought."""

    def __init__(self, ray: Any, actor: Any) -> None:
        self._ray, self._actor = ray, actor
        self._sequence = itertools.count()
        self._buffer: deque[Any] = deque()
        self._closed = False

    def send(self, message: Any) -> None:
        if self._closed:
            raise OSError("the connection to the Ray worker is closed")
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._actor.push.remote(next(self._sequence), data)  # the caller holds the send lock

    def recv(self) -> Any:
        while not self._buffer:
            if self._closed:
                raise EOFError
            try:
                data = self._ray.get(self._actor.drain.remote(DRAIN_WAIT_S))
            except self._ray.exceptions.RayError:
                raise EOFError from None  # the actor died
            if data is None:
                raise EOFError  # the worker loop ended (it was told to exit)
            self._buffer.extend(pickle.loads(data))
        return self._buffer.popleft()

    def close(self) -> None:
        self._closed = True


class RayProcess:
    """The actor as the service sees a worker process: pid, join, is_alive, kill, exitcode."""

    def __init__(self, ray: Any, actor: Any, name: str) -> None:
        self._ray, self._actor, self.name = ray, actor, name
        self.exitcode: int | None = None
        try:
            pid, host = ray.get(actor.where.remote())
        except ray.exceptions.RayError:
            pid, host = 0, ""
        self.pid = pid if host == socket.gethostname() else None  # memory is read locally only

    def join(self, timeout: float | None = None) -> None:
        if self.exitcode is not None:
            return
        wait = 1.0 if timeout is None else float(timeout)
        try:
            done = self._ray.get(self._actor.wait_finished.remote(wait), timeout=wait + 10.0)
        except self._ray.exceptions.RayError:  # dead (or unreachable): gone for us
            self.exitcode = -1
            return
        if done:
            self.exitcode = 0
            self._ray.kill(self._actor)  # the loop ended: free the actor's CPU for others

    def is_alive(self) -> bool:
        return self.exitcode is None

    def kill(self) -> None:
        self._ray.kill(self._actor)
        self.exitcode = -9


class RayWorker(PipeWorker):
    """A worker of the service that is a Ray actor (the rest is PipeWorker's: requests, replies,
    updates, restart after a death)."""

    def _start(self) -> None:
        ray = connect(self.service.ray_address)
        gpus = float(os.environ.get(ENV_GPUS, "0") or 0)
        actor_class = ray.remote(num_cpus=1, num_gpus=gpus, max_concurrency=4)(WorkerActor)
        actor = actor_class.remote()
        self.started = time.monotonic()
        self.process = RayProcess(ray, actor, f"marginlab-ray-worker-{self.index}")
        self.conn = RayConnection(ray, actor)
        self._listen()


def ray_workers(service: TrainingService, count: int) -> list[PipeWorker]:
    return [RayWorker(service, index) for index in range(count)]
