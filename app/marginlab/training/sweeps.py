"""Where a sweep's independent runs train: one core, every local core, or a Ray cluster.

    with sweep_executor("local") as executor:
        results = run_cells(train_cell, [{"s": 16.0, "m": 0.5, "seed": 0}, ...], executor=executor)

A sweep (the phase map's cells, `compare` / `verify` over seeds) is many runs that know nothing
of each other, so they can train anywhere; each is seeded, so where it trains changes nothing
in its result (one torch thread everywhere, as in the training service's workers).

- "serial": in this process, one cell after the other (one core: the baseline).
- "local": a pool of spawn processes (safe in a threaded server), one per usable core unless
  `workers` says otherwise, one torch thread each.
- "ray": every cell a Ray task of one CPU on the cluster at $MARGINLAB_RAY_ADDRESS (see
  training.service.ray_backend; "local" starts a Ray on this machine).
Default: "ray" when $MARGINLAB_RAY_ADDRESS is set, else "local".

The function and its arguments must pickle (a module-level function, plain data): a cell
travels to another process or machine.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from typing import Any

KINDS = ("serial", "local", "ray")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def sweep_executor(kind: str | None = None, *, workers: int | None = None) -> Executor:
    """An executor of `kind` (see the module doc); ValueError for an unknown kind."""
    if kind is None:
        kind = "ray" if os.environ.get("MARGINLAB_RAY_ADDRESS", "").strip() else "local"
    if kind == "serial":
        return SerialExecutor()
    if kind == "local":
        count = usable_cores() if workers is None else int(workers)
        if count < 1:
            raise ValueError(f"a local sweep needs at least one process, got {count}")
        return ProcessPoolExecutor(
            max_workers=count,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_one_thread,
        )
    if kind == "ray":
        return RayExecutor(os.environ.get("MARGINLAB_RAY_ADDRESS", "").strip() or "local")
    raise ValueError(f"unknown sweep executor {kind!r}: one of {', '.join(KINDS)}")


def run_cells(
    function: Callable[..., Any],
    cells: Sequence[Mapping[str, Any]],
    *,
    executor: Executor | None = None,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """`function(**cell)` for every cell, through `executor` (None: here, one after the
    other); `on_result(index, result)` as each finishes (in the order they finish, so a
    sweep can save as it goes). Returns the results in the cells' order. The first cell that
    raises stops the sweep: the cells not started are cancelled, the error is raised."""
    results: list[Any] = [None] * len(cells)

    def done(index: int, result: Any) -> None:
        results[index] = result
        if on_result is not None:
            on_result(index, result)

    if executor is None:
        for index, cell in enumerate(cells):
            done(index, function(**cell))
        return results
    futures = {executor.submit(function, **cell): index for index, cell in enumerate(cells)}
    try:
        for future in as_completed(futures):
            done(futures[future], future.result())
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return results


class SerialExecutor(Executor):
    """Runs each submitted call at once, in this process (the one-core baseline)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:
            future.set_exception(error)
        return future


class RayExecutor(Executor):
    """Each submitted call a Ray task of one CPU (and one torch thread)."""

    def __init__(self, address: str) -> None:
        from marginlab.training.service.ray_backend import connect

        self._ray = connect(address)
        self._task = self._ray.remote(num_cpus=1)(_one_thread_call)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        return self._task.remote(fn, args, kwargs).future()


def _one_thread() -> None:
    import torch  # here, not at import: the CLI imports this module for its arguments

    torch.set_num_threads(1)


def _one_thread_call(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    _one_thread()
    return fn(*args, **kwargs)
