"""The training service: real training in real worker processes (no mocks).

Bit-identical to the engine and the CLI, exact Pause, independent sessions, faults that stay in
their trainer, a crashed worker restarted, and a killed server that leaves nothing behind.
"""

from __future__ import annotations

import functools
import operator
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import service_helpers
from marginlab.cli import main as cli_main
from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import default_config
from marginlab.training.run_files import load_run
from marginlab.training.service import TrainingService
from marginlab.training.service.builders import new_comparison, new_run
from marginlab.training.service.slot import PACE_AHEAD, PICTURE_FLOOR_S, picture_due
from service_helpers import saved, wait_for, weights

pytestmark = pytest.mark.usefixtures("one_thread")  # the workers train on one thread too
FAST = {"device": "cpu", "probe_size": 200, "snapshot_every": 10}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def service():
    service = TrainingService(workers=2, ttl=600.0)  # the TTL test lowers it for itself
    yield service
    service.shutdown()


def test_n_steps_through_the_service_equal_the_cli_and_the_engine(service, tmp_path):
    """Two sessions play at once (sharing workers, live snapshots in between); each ends bit
    for bit where the CLI (one thread) and the engine put the same config after N steps."""
    steps = 40
    arc = default_config("arcface", 2, **FAST)
    cmp = [default_config(loss, 2, **FAST) for loss in ("softmax", "cosface")]
    first, second = service.create(new_run(arc)), service.create(new_comparison(cmp))
    first.play(until=steps)
    second.play(until=steps)
    wait_for(lambda: not first.playing and not second.playing, 300, "both to reach N")
    assert first.steps == second.steps == steps
    served = saved(first, tmp_path)
    cli_file = tmp_path / "cli.pt"
    assert cli_main(["train", "--loss", "arcface", "--dim", "2", "--steps", str(steps),
                     "--threads", "1", "--probe-size", "200", "--snapshot-every", "10",
                     "--device", "cpu", "--save", str(cli_file)]) == 0  # fmt: skip
    assert weights(served) == weights(load_run(cli_file))
    assert served.evaluate() == load_run(cli_file).evaluate()
    engine = LockstepComparison(cmp)
    engine.step(steps)
    served_pair = saved(second, tmp_path, comparison=True)
    assert [weights(run) for run in served_pair] == [weights(run) for run in engine]
    # The mirrored snapshot at step N is the engine's picture of the same weights.
    mirrored = next(s for s in first.runs[0].history if s.step == steps)
    np.testing.assert_array_equal(mirrored.weights, served.latest_snapshot().weights)
    for handle in (first, second):
        service.close(handle)


def test_pause_is_exact_and_sessions_are_independent(service, tmp_path):
    playing = service.create(new_run(default_config("arcface", 2, **FAST)))
    idle = service.create(new_run(default_config("arcface", 2, **FAST)))
    playing.play()
    wait_for(lambda: playing.steps >= 15, 120, "15 steps")
    at_pause = playing.pause()
    assert not playing.playing and at_pause >= 15
    time.sleep(1.5)
    assert playing.steps == at_pause
    assert saved(playing, tmp_path).steps == at_pause  # the worker's own count
    assert playing.query(0, operator.attrgetter("steps")) == at_pause
    assert idle.steps == 0 and not idle.playing  # untouched by its neighbour
    idle.set_params([idle.runs[0].config.with_changes(m2=0.35)])
    assert idle.runs[0].config.m2 == 0.35 and playing.runs[0].config.m2 == 0.2
    assert idle.step(3) == 3 and playing.steps == at_pause
    for handle in (playing, idle):
        service.close(handle)


def test_a_nan_guard_trip_pauses_that_run_with_a_message(service):
    handle = service.create(functools.partial(service_helpers.nan_at_step, 4))
    handle.play()
    wait_for(lambda: not handle.playing, 120, "the guard to pause the run")
    assert handle.steps == 5 and handle.runs[0].skipped_steps == 1
    assert "non-finite" in handle.error and "step 5" in handle.error
    handle.play(until=8)  # Play again: the run goes on
    wait_for(lambda: not handle.playing, 120, "step 8")
    assert handle.steps == 8 and handle.error == ""
    service.close(handle)


def test_an_exception_in_a_trainer_pauses_only_that_trainer(service):
    broken = service.create(functools.partial(service_helpers.raising_at_step, 5))
    healthy = service.create(new_run(default_config("softmax", 2, **FAST)))
    broken.play()
    healthy.play()
    wait_for(lambda: not broken.playing, 120, "the failure")
    assert broken.steps == 5 and "planted failure" in broken.error
    before = healthy.steps
    wait_for(lambda: healthy.steps > before + 3, 120, "the healthy trainer to go on")
    assert healthy.playing and healthy.error == ""
    for handle in (broken, healthy):
        service.close(handle)


def test_a_trainer_nobody_polls_is_ended(service):
    service.ttl = 1.0
    try:
        forgotten = service.create(new_run(default_config("arcface", 2, **FAST)))
        forgotten.play()
        wait_for(lambda: forgotten.closed, 30, "the reaper")
        held = {trainer for worker in service.ping() for trainer in worker["trainers"]}
        assert forgotten.id not in held
    finally:
        service.ttl = 600.0


def test_a_killed_worker_is_restarted_and_only_its_trainers_are_told(service):
    victim = service.create(new_run(default_config("arcface", 2, **FAST)))
    survivor = service.create(new_run(default_config("cosface", 2, **FAST)))
    assert victim.worker_pid != survivor.worker_pid  # the fewest-trainers worker each
    victim.play()
    survivor.play()
    wait_for(lambda: victim.steps > 2 and survivor.steps > 2, 120, "both to train")
    os.kill(victim.worker_pid, signal.SIGKILL)
    wait_for(lambda: bool(victim.crashed), 30, "the crash report")
    assert "Reset" in victim.crashed and not victim.playing
    before = survivor.steps
    wait_for(lambda: survivor.steps > before + 3, 120, "the survivor to go on")
    assert survivor.playing and not survivor.crashed
    wait_for(lambda: victim.worker_pid not in service.worker_pids(), 30, "a new worker")
    again = service.create(new_run(default_config("arcface", 2, **FAST)))  # as Reset does
    assert again.step(2) == 2
    for handle in (survivor, again):
        service.close(handle)


PARENT = textwrap.dedent(
    """
    import time
    from marginlab.training.config import default_config
    from marginlab.training.service import TrainingService
    from marginlab.training.service.builders import new_run

    service = TrainingService(workers=2)
    handle = service.create(new_run(default_config("arcface", 2, device="cpu", probe_size=200)))
    handle.play()
    while handle.steps < 3:
        time.sleep(0.05)
    print(" ".join(str(pid) for pid in service.worker_pids()), flush=True)
    time.sleep(600)
    """
)


def processes_with(token: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if token.encode() not in (entry / "environ").read_bytes():
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def shm_names() -> set[str]:
    shm = Path("/dev/shm")
    return {p.name for p in shm.iterdir()} if shm.is_dir() else set()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_sigkill_of_the_server_leaves_no_worker_and_no_shared_memory(tmp_path):
    """The server is a script file with no __main__ guard, like a Streamlit page: spawn must
    not run it again in the workers (they would start services of their own)."""
    token = f"marginlab-test-{uuid.uuid4().hex}"
    script = tmp_path / "server.py"
    script.write_text(PARENT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO / "app"), "MARGINLAB_TEST_TOKEN": token}
    shm_before = shm_names()
    parent = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        line = parent.stdout.readline()  # the workers trained: they are up
        workers = [int(pid) for pid in line.split()]
        assert len(workers) == 2, line
        ours = set(processes_with(token))
        assert set(workers) | {parent.pid} <= ours
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
    deadline = time.monotonic() + 10.0
    while processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(token) == [], "a process of the killed server survived it"
    pids = {str(pid) for pid in ours}
    left = {
        name
        for name in shm_names() - shm_before
        if any(pid in name for pid in pids) or name.startswith(("psm_", "mp-", "sem.mp-"))
    }
    assert not left, f"shared memory left behind: {sorted(left)}"


def test_a_page_that_redraws_slowly_gets_fewer_live_snapshots(service):
    """pace(): the worker takes live snapshots no more often than the page redraws (a
    snapshot costs as much as a few steps). Counted in the trainer's own history, which
    keeps every snapshot it took (its scheduled ones every 25 steps besides)."""
    config = default_config("arcface", 2, **{**FAST, "snapshot_every": 100_000})
    counts = {}
    for redraw in (0.25, 1.5):
        handle = service.create(new_run(config))
        try:
            handle.pace(redraw)
            handle.play()
            time.sleep(6.0)
            handle.pause()
            counts[redraw] = len(handle.runs[0].history)
        finally:
            service.close(handle)
    # one every PACE_AHEAD x 1.5 s (at 0, 1.125, ... 5.625 s), plus creation and Pause: 8
    assert counts[1.5] <= 6.0 / (PACE_AHEAD * 1.5) + 1 + 2
    assert counts[1.5] < counts[0.25]


def test_a_crowded_slot_still_gives_its_pages_a_picture_a_second():
    """picture_due: after the pace, a snapshot waits until the slot has trained 3 x its cost;
    a page that has waited PICTURE_FLOOR_S gets one once it trained 1 x the cost (on a crowded
    worker the clock mostly runs for the other trainers); a slow page's pace still holds."""
    cost = 0.04
    assert not picture_due(since_push=0.1, interval=0.25, trained=1.0, cost=cost)  # the pace
    assert picture_due(since_push=0.3, interval=0.25, trained=3 * cost, cost=cost)
    waited = PICTURE_FLOOR_S - 0.1
    assert not picture_due(since_push=waited, interval=0.25, trained=1.5 * cost, cost=cost)
    assert picture_due(since_push=PICTURE_FLOOR_S, interval=0.25, trained=1.5 * cost, cost=cost)
    assert not picture_due(since_push=5.0, interval=0.25, trained=0.5 * cost, cost=cost)
    assert not picture_due(since_push=1.5, interval=2.0, trained=1.5 * cost, cost=cost)
    assert picture_due(since_push=2.0, interval=2.0, trained=1.5 * cost, cost=cost)
    assert picture_due(since_push=float("inf"), interval=0.25, trained=0.0, cost=0.0)  # first
