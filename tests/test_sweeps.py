"""Sweeps through an executor (training.sweeps): the same cells, the same results, wherever
they train. The phase map's real runs through a local process pool equal the serial sweep."""

from __future__ import annotations

import pytest

from marginlab.experiments.phase_map import phase_map
from marginlab.training.sweeps import SerialExecutor, run_cells, sweep_executor

pytestmark = pytest.mark.usefixtures("one_thread")
GRID = {"s_values": (4.0, 16.0), "m_values": (0.0, 0.5), "seeds": (0,), "steps": 12, "warmup": 0}


def _cube(x: int) -> int:
    if x < 0:
        raise ValueError(f"no cube of {x} here")
    return x**3


def test_run_cells_keeps_the_order_and_reports_each_result():
    seen = []
    cells = [{"x": x} for x in (3, 1, 2)]
    results = run_cells(
        _cube, cells, executor=SerialExecutor(), on_result=lambda i, r: seen.append((i, r))
    )
    assert results == [27, 1, 8] and sorted(seen) == [(0, 27), (1, 1), (2, 8)]
    assert run_cells(_cube, cells) == results  # no executor: here, in turn
    with pytest.raises(ValueError, match="no cube of -1"):
        run_cells(_cube, [{"x": 1}, {"x": -1}], executor=SerialExecutor())
    with pytest.raises(ValueError, match="unknown sweep executor 'gpu'"):
        sweep_executor("gpu")


def test_a_phase_map_through_local_processes_equals_the_serial_one(tmp_path):
    serial = phase_map(cache_dir=tmp_path / "serial", **GRID)
    with sweep_executor("local", workers=2) as executor:
        pooled = phase_map(cache_dir=tmp_path / "pool", executor=executor, **GRID)
    assert pooled["runs"] == serial["runs"] and pooled["cells"] == serial["cells"]
    assert all(str(0) in cell for row in serial["runs"] for cell in row)  # every cell trained
