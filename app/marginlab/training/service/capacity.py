"""How many private trainers a worker holds, who waits for one, and the server's load.

A class on one server is thirty sessions. Those on the same setup follow one shared trainer
(sharing.py), which is always live; a session that changes anything gets a private trainer,
and private trainers are what fill the cores. So their number per worker is limited
($MARGINLAB_PRIVATE_PER_WORKER, default DEFAULT_PRIVATE_PER_WORKER): beyond it a session
waits in a first-come queue, can read its place in it, and goes on following the shared run
meanwhile. Nothing gets silently slower: a fifth private trainer on a full worker would take a
fifth of everybody's steps.

The limit counts trainers that exist, paused or playing (a paused one costs no CPU but may
play at any moment, and it holds its history in memory); a closed tab's trainer is ended after
the service's TTL, and its place goes to the next in the queue.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ENV_PRIVATE_PER_WORKER = "MARGINLAB_PRIVATE_PER_WORKER"
# A picture update of a playing trainer costs 4 live snapshots of CPU (slot.py takes one after
# 3x its cost of training); a snapshot of the Lab's 2-D run costs 2.4 steps, 95 ms of CPU on a
# busy shared core (benchmarks/bench_classroom.py): 2.6 trainers per core at >= 1 update/s
# there, about 4 at the quiet core's 23 ms a step. So 3 private trainers and a shared one.
DEFAULT_PRIVATE_PER_WORKER = 3


def private_per_worker(configured: int | None = None) -> int:
    """`configured`, else $MARGINLAB_PRIVATE_PER_WORKER, else DEFAULT_PRIVATE_PER_WORKER."""
    if configured is None:
        text = os.environ.get(ENV_PRIVATE_PER_WORKER, "").strip()
        if text:
            try:
                configured = int(text)
            except ValueError:
                raise ValueError(
                    f"{ENV_PRIVATE_PER_WORKER} must be a whole number, got {text!r}"
                ) from None
    if configured is None:
        return DEFAULT_PRIVATE_PER_WORKER
    if configured < 1:
        raise ValueError(f"a worker needs room for at least one private trainer, got {configured}")
    return configured


class PrivateSlots:
    """`limit` private trainers per worker, and the queue of those waiting for a place.

    Thread-safe. `reserve()` takes a place (on the worker with the fewest) or returns None;
    `release(worker)` gives it back. The queue holds opaque tickets, first come first served."""

    def __init__(self, workers: int, limit: int) -> None:
        self.limit = int(limit)
        self.used = [0] * int(workers)
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()

    def reserve(self, *, queued: Any = None) -> int | None:
        """A worker index with room, now taken; None when every worker is full. Nobody jumps
        the queue: with tickets waiting, only the first one (`queued`) may reserve."""
        with self._lock:
            if self._queue and self._queue[0] is not queued:
                return None
            room = [i for i, used in enumerate(self.used) if used < self.limit]
            if not room:
                return None
            worker = min(room, key=lambda i: self.used[i])
            self.used[worker] += 1
            if queued is not None:
                self._queue.popleft()
            return worker

    def release(self, worker: int) -> None:
        with self._lock:
            self.used[worker] = max(0, self.used[worker] - 1)

    def enqueue(self, ticket: Any) -> int:
        """Put `ticket` at the end of the queue (once); returns its 1-based position."""
        with self._lock:
            if ticket not in self._queue:
                self._queue.append(ticket)
            return self._queue.index(ticket) + 1

    def position(self, ticket: Any) -> int:
        """1-based place in the queue, 0 when not waiting."""
        with self._lock:
            return self._queue.index(ticket) + 1 if ticket in self._queue else 0

    def withdraw(self, ticket: Any) -> None:
        with self._lock:
            if ticket in self._queue:
                self._queue.remove(ticket)

    def first(self) -> Any:
        with self._lock:
            return self._queue[0] if self._queue else None

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._queue)


@dataclass(frozen=True)
class ServerLoad:
    """What the About page / a status line shows about the server (`SharingService.load()`)."""

    workers: int
    private_per_worker: int
    private: tuple[int, ...]  # private trainers per worker
    shared_runs: int  # shared trainers alive
    following: int  # sessions that follow one of them
    playing: int  # trainers stepping now (shared and private)
    waiting: int  # sessions waiting for a private trainer
    rss_bytes: int  # server + local workers, resident memory

    @property
    def private_capacity(self) -> int:
        return self.workers * self.private_per_worker

    def line(self) -> str:
        """One line for a page: e.g. "Server: 1 worker · private trainers 3 of 4 · 2 shared
        runs followed by 21 sessions · 5 playing · 2 waiting · memory 1.4 GB"."""
        parts = [
            f"{self.workers} worker{'s' if self.workers != 1 else ''}",
            f"private trainers {sum(self.private)} of {self.private_capacity}",
            f"{self.shared_runs} shared run{'s' if self.shared_runs != 1 else ''} followed by "
            f"{self.following} session{'s' if self.following != 1 else ''}",
            f"{self.playing} playing",
        ]
        if self.waiting:
            parts.append(f"{self.waiting} waiting for a private trainer")
        if self.rss_bytes:
            parts.append(f"memory {self.rss_bytes / 1e9:.1f} GB")
        return "Server: " + " · ".join(parts)


def resident_bytes(pids: Iterable[int]) -> int:
    """The summed resident memory of these processes (Linux /proc; 0 for any not readable)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{int(pid)}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError):
            continue
    return total
