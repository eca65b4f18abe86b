"""Memory after sessions end: does the server give back what its sessions used?

Run: PYTHONPATH=app python benchmarks/bench_memory.py [--rounds 2] [--sessions 6] [--steps 50]
     [--workers 1] [--ttl 3] [--json]

Against the SharingService the Streamlit server uses (ui/service.py), in this process, which
plays the server: it holds each session's handle and the snapshot histories mirrored from the
workers, as the server does (a real `streamlit run` with browser tabs was too heavy for a
shared two-core machine; the service, its worker processes and the training are the real ones).

- Warm baseline: one session opens the Lab's default setup (2-D ArcFace on mnist-toy), trains
  a few steps, closes; the service and its workers stay up, as in a server.
- Then `--rounds` rounds of `--sessions` sessions, all open at once, each on its own seed (its
  own trainer), as pages: each polls its session every 0.35 s (the Lab's tick, which touches
  it) while it plays `--steps` steps, then pauses. Half of them then close (Reset, a new setup),
  the other half just stop polling (a closed tab): the service ends those after its TTL
  (`--ttl`, short here; 120 s in the server).
- After each round, once every trainer has ended (no session left, no trainer in any worker),
  and the pages' objects are dropped as Streamlit drops a closed session's state: the resident
  memory (VmRSS) of this process and of the workers, as capacity.resident_bytes sums it.

Printed: MB per process and in all, per phase, and each round's difference to the warm
baseline. `--json` prints one JSON object (tests/test_memory_return.py reads it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time

import torch

from marginlab.training.config import default_config
from marginlab.training.service import TrainingService
from marginlab.training.service.builders import new_run
from marginlab.training.service.capacity import resident_bytes
from marginlab.training.service.sharing import SharingService

TICK_S = 0.35  # the Lab's fragment interval (ui/live.py)
SETTLE_S = 2.0  # after the last trainer ended: the workers' pipes and threads go quiet
MB = 1e6


def lab_config(seed: int):
    """The Lab's default setup (2-D ArcFace on the shipped subset), on the CPU."""
    return default_config("arcface", 2, device="cpu", seed=seed)


def page(session, steps: int, close: bool) -> None:
    """One page: Play, poll each tick until `steps`, Pause; then close (or stop polling)."""
    session.play()
    deadline = time.monotonic() + 600
    while session.steps < steps and time.monotonic() < deadline:
        session.touch()
        session.runs[0].latest_snapshot()  # what a tick draws from
        time.sleep(TICK_S)
    session.pause()
    if close:
        session.close()


def wait_until_empty(sharing: SharingService, timeout: float = 120.0) -> None:
    """Every session and trainer has ended, here and in every worker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = not (sharing.handles() or sharing.service.handles() or sharing._groups)
        if ended and all(not worker["trainers"] for worker in sharing.service.ping()):
            return
        time.sleep(0.2)
    raise RuntimeError("sessions did not end in time")


def measure(sharing: SharingService) -> dict[str, float]:
    gc.collect()  # as the server's own collector would by then (a closed session's state)
    time.sleep(SETTLE_S)
    server = resident_bytes([os.getpid()])
    workers = resident_bytes(sharing.service.worker_pids())
    return {
        "server_mb": server / MB,
        "workers_mb": workers / MB,
        "total_mb": (server + workers) / MB,
    }


def one_round(sharing: SharingService, sessions: int, steps: int, first_seed: int) -> None:
    handles = [sharing.create(new_run(lab_config(first_seed + i))) for i in range(sessions)]
    pages = [
        threading.Thread(target=page, args=(handle, steps, i % 2 == 0))
        for i, handle in enumerate(handles)
    ]
    for thread in pages:
        thread.start()
    for thread in pages:
        thread.join()
    del handles, pages  # a closed tab's session state goes with its Streamlit session
    wait_until_empty(sharing)


def run(rounds: int, sessions: int, steps: int, workers: int, ttl: float) -> dict:
    torch.set_num_threads(1)
    sharing = SharingService(
        TrainingService(workers=workers, ttl=ttl), share=True, private_per_worker_limit=64
    )
    try:
        start = measure(sharing)
        one_round(sharing, 1, 5, first_seed=1000)  # warm: data, model code, first snapshot
        result = {"started": start, "warm": measure(sharing), "rounds": []}
        for index in range(rounds):
            one_round(sharing, sessions, steps, first_seed=index * sessions)
            result["rounds"].append(measure(sharing))
    finally:
        sharing.shutdown()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ttl", type=float, default=3.0, help="the service's session TTL, s")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.rounds, args.sessions, args.steps, args.workers, args.ttl)
    if args.json:
        print(json.dumps(result))
        return 0
    rows = [("started", result["started"]), ("warm baseline", result["warm"])]
    rows += [(f"after round {i + 1}", r) for i, r in enumerate(result["rounds"])]
    print(f"{'':16} {'server MB':>10} {'workers MB':>11} {'total MB':>9} {'vs warm':>8}")
    for name, row in rows:
        delta = row["total_mb"] - result["warm"]["total_mb"]
        print(
            f"{name:16} {row['server_mb']:10.1f} {row['workers_mb']:11.1f} "
            f"{row['total_mb']:9.1f} {delta:+8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
