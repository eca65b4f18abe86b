"""The cluster option on a local Ray (ray.init(num_cpus=2)): the training service's workers
as Ray actors and the phase map's cells as Ray tasks give what processes give, bit for bit.

One test, as CI runs it (Ray is an optional extra: `pip install -e .[cluster]`; skipped
without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from marginlab.experiments.phase_map import phase_map
from marginlab.training.config import default_config
from marginlab.training.run import Run
from marginlab.training.service import TrainingService
from marginlab.training.service.builders import new_run
from marginlab.training.sweeps import sweep_executor
from service_helpers import saved, wait_for, weights

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.usefixtures("one_thread")
APP = str(Path(__file__).resolve().parents[1] / "app")


def test_workers_as_ray_actors_and_sweep_cells_as_ray_tasks(tmp_path, monkeypatch):
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": APP}},  # the actors import marginlab
    )
    try:
        service = TrainingService(workers=1, ttl=600.0, ray_address="local")
        try:
            config = default_config("arcface", 2, device="cpu", probe_size=200, snapshot_every=10)
            handle = service.create(new_run(config))
            handle.play(until=25)
            wait_for(lambda: not handle.playing, 300, "25 steps on the actor")
            alone = Run(config)
            alone.step(25)
            assert handle.steps == 25 and weights(saved(handle, tmp_path)) == weights(alone)
            assert handle.pause() == 25 and service.ping()[0]["trainers"] == [handle.id]
        finally:
            service.shutdown()
        grid = {"s_values": (4.0, 16.0), "m_values": (0.5,), "seeds": (0,), "steps": 10}
        serial = phase_map(cache_dir=tmp_path / "serial", warmup=0, **grid)
        monkeypatch.setenv("MARGINLAB_RAY_ADDRESS", "local")
        on_ray = phase_map(cache_dir=tmp_path / "ray", warmup=0, executor=sweep_executor(), **grid)
        assert on_ray["runs"] == serial["runs"]
    finally:
        ray.shutdown()
