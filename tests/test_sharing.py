"""Shared runs and private places (training.service.sharing, session, capacity), on real
training in real worker processes.

A fork must go on exactly as the shared trainer would have alone: its weights after M more
steps equal, bit for bit, those of an engine run trained for the fork's step + M.
"""

from __future__ import annotations

import time

import pytest

from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import default_config
from marginlab.training.run import Run
from marginlab.training.service import TrainingService
from marginlab.training.service.builders import new_comparison, new_run
from marginlab.training.service.capacity import PrivateSlots, private_per_worker
from marginlab.training.service.sharing import SharingService, setup_key
from service_helpers import saved, wait_for, weights

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = {"device": "cpu", "probe_size": 200, "snapshot_every": 10}
ARC = default_config("arcface", 2, **FAST)


@pytest.fixture(scope="module")
def service():
    service = TrainingService(workers=1, ttl=600.0)
    yield service
    service.shutdown()


@pytest.fixture
def sharing(service):
    sharing = SharingService(service, share=True, private_per_worker_limit=4)
    yield sharing
    sharing.shutdown(service=False)
    assert service.handles() == []  # every trainer ended with its sessions


def test_setup_key_is_the_recipe():
    assert setup_key(new_run(ARC)) == setup_key(new_run(default_config("arcface", 2, **FAST)))
    assert setup_key(new_run(ARC)) != setup_key(new_run(ARC.with_changes(m2=0.3)))
    assert setup_key(new_run(ARC)) != setup_key(new_run(ARC.with_changes(seed=1)))


def test_one_setup_one_trainer_the_same_picture_and_pause_per_session(sharing, service):
    first, second, third = (sharing.create(new_run(ARC)) for _ in range(3))
    assert len(service.handles()) == 1 and first.shared and not first.playing
    assert "2 other sessions" in first.notice
    first.play()
    second.play()
    wait_for(lambda: first.steps >= 20, 120, what="20 shared steps")
    assert third.steps == 0 and not third.playing  # it never pressed Play: still at its start
    at_pause = second.pause()
    wait_for(lambda: first.steps > at_pause, 120, what="the shared trainer to go on")
    assert second.steps == at_pause and not second.playing  # exact, for this view only
    assert first.playing and second.runs is not first.runs
    second.play()  # follows the shared run again, where it is now
    assert second.runs is first.runs and second.playing  # the very same views
    for session in (first, second):
        session.pause()
    group = sharing._groups[setup_key(new_run(ARC))]
    wait_for(lambda: not group.handle.playing, 10, "the shared trainer to pause")
    assert sharing.load().shared_runs == 1 and sharing.load().following == 3


def test_a_fork_goes_on_exactly_as_the_run_would_alone(sharing, tmp_path):
    """Step forks; so does a slider move while following live (with the new value from the
    fork's first step). Both equal an engine run with the same history, bit for bit."""
    leader, stepper, mover = (sharing.create(new_run(ARC)) for _ in range(3))
    leader.play()
    mover.play()
    wait_for(lambda: leader.steps >= 15, 120, what="15 shared steps")
    assert stepper.step(7) == stepper.forked_at + 7 and not stepper.shared
    mover.set_params([ARC.with_changes(m2=0.35)])
    wait_for(lambda: not mover.shared, 120, what="the background fork")
    assert mover.playing and mover.runs[0].config.m2 == 0.35
    wait_for(lambda: mover.steps >= mover.forked_at + 5, 120, what="5 private steps")
    mover.pause()
    assert leader.playing and leader.runs[0].config.m2 == 0.2  # the others never noticed

    alone = Run(ARC)
    alone.step(stepper.forked_at + 7)
    forked = saved(stepper, tmp_path)
    assert forked.steps == alone.steps and weights(forked) == weights(alone)
    assert forked.evaluate() == alone.evaluate()

    changed = Run(ARC)
    changed.step(mover.forked_at)
    changed.set_params(m2=0.35)
    changed.step(mover.steps - mover.forked_at)
    assert weights(saved(mover, tmp_path)) == weights(changed)
    # The fork kept the shared run's history: its scrubber starts at step 0.
    assert mover.runs[0].history[0].step == 0


def test_a_forked_comparison_equals_the_lockstep_engine(sharing, tmp_path):
    configs = [default_config(loss, 2, **FAST) for loss in ("softmax", "cosface")]
    leader, stepper = (sharing.create(new_comparison(configs)) for _ in range(2))
    leader.play()
    wait_for(lambda: leader.steps >= 6, 120, what="6 shared lock-steps")
    stepper.step(4)
    engine = LockstepComparison(configs)
    engine.step(stepper.forked_at + 4)
    forked = saved(stepper, tmp_path, comparison=True)
    assert [weights(run) for run in forked] == [weights(run) for run in engine]


def test_beyond_the_limit_a_session_waits_in_line_and_follows_the_shared_run(service):
    sharing = SharingService(service, share=True, private_per_worker_limit=1)
    try:
        first, second, third = (sharing.create(new_run(ARC)) for _ in range(3))
        first.step(2)
        assert not first.shared and sharing.load().private == (1,)
        assert second.step(3) == 0 and second.shared and second.queue_position == 1
        assert "number 1 in the queue" in second.error  # a fast-forward loop stops on it
        third.play()
        third.set_params([ARC.with_changes(m2=0.3)])
        assert third.queue_position == 2 and third.playing  # still live on the shared run
        load = sharing.load()
        assert load.waiting == 2 and "2 waiting" in load.line()
        sharing.close(first)
        wait_for(lambda: not second.shared, 120, what="the first in line to get the place")
        assert third.queue_position == 1 and third.shared
        sharing.close(second)
        wait_for(lambda: not third.shared, 120, what="the second in line")
        assert third.runs[0].config.m2 == 0.3 and third.playing  # it was live: it plays on
        assert sharing.load().private == (1,) and sharing.load().waiting == 0
    finally:
        sharing.shutdown(service=False)
    assert service.handles() == []


def test_reset_gives_a_private_run_at_step_zero(sharing):
    watcher, resetter = sharing.create(new_run(ARC)), sharing.create(new_run(ARC))
    resetter.reset()
    assert resetter.shared  # at step 0 the shared run is what a fresh one would be
    watcher.play()
    wait_for(lambda: watcher.steps >= 5, 120, what="5 shared steps")
    resetter.reset()
    assert not resetter.shared and resetter.steps == 0 and resetter.forked_at is None
    assert resetter.runs[0].init_hash == watcher.runs[0].init_hash
    assert watcher.playing and watcher.shared


def test_a_session_nobody_polls_is_ended_and_its_trainers_go(service):
    service.ttl = 2.0
    sharing = SharingService(service, share=True)
    try:
        sessions = [sharing.create(new_run(ARC)) for _ in range(2)]
        sessions[0].step(1)
        assert len(service.handles()) == 2
        wait_for(lambda: all(s.closed for s in sessions), 30, "the TTL")
        assert service.handles() == [] and sharing.load().private == (0,)
    finally:
        service.ttl = 600.0
        sharing.shutdown(service=False)


def test_the_ttl_goes_on_after_one_session_fails_to_end(service, monkeypatch):
    """A failure while ending one session (here: its worker refuses the close) is logged; the
    queue thread lives on and still ends the others (it used to die with it, and then nobody
    ended anything)."""
    service.ttl = 2.0
    sharing = SharingService(service, share=True)
    try:
        doomed, other = (
            sharing.create(new_run(ARC)),
            sharing.create(new_run(ARC.with_changes(seed=1))),
        )
        real_leave = sharing._leave

        def leave(session):
            if session is doomed:
                raise BrokenPipeError("the worker's pipe is closed")
            real_leave(session)

        monkeypatch.setattr(sharing, "_leave", leave)
        wait_for(lambda: other.closed, 30, "the TTL to end the other session")
        assert sharing._granter.is_alive()
        monkeypatch.setattr(sharing, "_leave", real_leave)
        real_leave(doomed)  # what the failed close left behind
    finally:
        service.ttl = 600.0
        sharing.shutdown(service=False)


def test_sharing_off_gives_every_session_its_own_trainer(service):
    sharing = SharingService(service, share=False)
    try:
        first, second = sharing.create(new_run(ARC)), sharing.create(new_run(ARC))
        assert first.id != second.id and len(service.handles()) == 2
        for handle in (first, second):
            sharing.close(handle)
    finally:
        sharing.shutdown(service=False)


def test_private_slots_are_first_come_first_served():
    slots = PrivateSlots(2, 1)
    assert {slots.reserve(), slots.reserve()} == {0, 1} and slots.reserve() is None
    slots.enqueue("a")
    assert slots.enqueue("b") == 2 and slots.position("a") == 1
    slots.release(1)
    assert slots.reserve() is None  # "a" is first in line
    assert slots.reserve(queued="b") is None and slots.reserve(queued="a") == 1
    assert slots.position("b") == 1 and slots.waiting == 1


def test_the_private_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MARGINLAB_PRIVATE_PER_WORKER", "7")
    assert private_per_worker() == 7
    monkeypatch.setenv("MARGINLAB_PRIVATE_PER_WORKER", "lots")
    with pytest.raises(ValueError, match="whole number"):
        private_per_worker()
    with pytest.raises(ValueError, match="at least one"):
        private_per_worker(0)


def test_a_state_of_another_setup_is_refused_with_one_line(tmp_path):
    from marginlab.training.run_files import RunFileError, restore, save_run

    path = save_run(Run(ARC), tmp_path / "arc.pt")
    with pytest.raises(RunFileError, match="saved with other settings"):
        restore(Run(ARC.with_changes(m2=0.3)), path)


def test_a_fork_that_lands_after_pause_keeps_the_paused_view(sharing):
    """A slider moved while following live forks in the background; a Pause before the fork
    lands must hold: the step shown at Pause stays, and Play goes on from the fork."""
    leader, mover = (sharing.create(new_run(ARC)) for _ in range(2))
    leader.play()
    mover.play()
    wait_for(lambda: leader.steps >= 15, 120, what="15 shared steps")
    mover.set_params([ARC.with_changes(m2=0.35)])
    at_pause = mover.pause()
    wait_for(lambda: not mover.shared, 120, what="the background fork")
    wait_for(lambda: leader.steps > at_pause + 10, 120, what="the shared trainer to go on")
    assert mover.steps == at_pause and not mover.playing  # the fork did not replace the view
    assert mover.runs[0].config.m2 == 0.35  # drawn with the value the user set
    assert mover.pause() == at_pause
    mover.play()
    wait_for(lambda: mover.steps > mover.forked_at, 120, what="the fork to train")
    assert mover.playing and mover.runs[0].config.m2 == 0.35
    for session in (leader, mover):
        session.pause()


def test_a_pause_while_the_fork_is_switched_in_holds(sharing, monkeypatch):
    """The user's Pause can land while a background fork is being switched in: after the
    session holds the fork and before the fork starts playing. It must hold: the fork stays
    paused at the step shown at Pause (once, under load, the fork started after the Pause
    and trained on: tests/test_app_live_browser.py saw 11 steps after it)."""
    mover = sharing.create(new_run(ARC))
    mover.play()
    wait_for(lambda: mover.steps >= 10, 120, what="10 shared steps")
    settle, paused = sharing.settle, []

    def settle_then_pause(group):
        settle(group)
        if not mover.shared and not paused:  # switched in, not yet playing: Pause now
            paused.append(mover.pause())

    monkeypatch.setattr(sharing, "settle", settle_then_pause)
    mover.set_params([ARC.with_changes(m2=0.35)])  # forks in the background
    wait_for(lambda: paused, 120, what="the fork and the Pause")
    time.sleep(2.0)  # many steps' time
    assert not mover.playing and mover.steps == paused[0]
    mover.close()
