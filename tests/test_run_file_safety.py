"""Run files from strangers: refused before they can use memory, or loaded and trainable.

Probes of issue 16: a compressed record that inflates to a gigabyte, a config asking for a
huge model, a history of the wrong shape or with NaN, negative counters, stride-0 views, and a
hypothesis fuzz over config values and tensor shapes. Memory is measured in a subprocess from
/proc (peak RSS, VmHWM, reset before the load through /proc/self/clear_refs).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import marginlab
from marginlab.data.batches import to_device
from marginlab.data.datasets import load_dataset
from marginlab.training.backbones import state_hash
from marginlab.training.config import default_config
from marginlab.training.run import Run
from marginlab.training.run_files import RunFileError, load_run, save_run

pytestmark = pytest.mark.usefixtures("one_thread")
APP = Path(marginlab.__file__).resolve().parents[1]  # the app/ folder these tests import
MB = 1024 * 1024


@pytest.fixture(scope="module")
def data():
    return to_device(load_dataset("mnist-toy"), torch.device("cpu"), probe_size=100)


@pytest.fixture(scope="module")
def good(tmp_path_factory, data) -> tuple[Run, Path]:
    """A sub-center ArcFace run (K sub-centres, the structural k) with three snapshots."""
    config = default_config(
        "subcenter-arcface", 2, device="cpu", probe_size=100, snapshot_every=3, batch_size=32
    )
    run = Run(config, data=data)
    run.step(9)
    path = tmp_path_factory.mktemp("good") / "run.pt"
    save_run(run, path)
    return run, path


def payload_of(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def write(payload: dict[str, Any], path: Path) -> Path:
    torch.save(payload, path)
    return path


def weights_of(run: Run) -> str:
    return state_hash(run.backbone) + state_hash(run.head)


def refused(path: Path) -> str:
    with pytest.raises(RunFileError) as caught:
        load_run(path)
    message = str(caught.value)
    assert message and "\n" not in message
    return message


# ----- memory: measured in a fresh process -------------------------------------------------
PEAK_SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    torch.set_num_threads(1)
    from marginlab.training.run_files import RunFileError, load_run

    def status(name):
        for line in open("/proc/self/status"):
            if line.startswith(name):
                return int(line.split()[1]) * 1024
    load_run(sys.argv[1])  # warm: imports, the dataset, the allocator
    open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM to the current RSS
    baseline = status("VmRSS")
    try:
        load_run(sys.argv[2])
        outcome = "loaded"
    except RunFileError as error:
        outcome = str(error)
    print(json.dumps({"outcome": outcome, "extra": status("VmHWM") - baseline}))
    """
)


def peak_load(good: Path, bomb: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(good), str(bomb)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(APP), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def deflate_bomb(good: Path, bomb: Path, inflated: int) -> None:
    """The good file with its first tensor record replaced by `inflated` deflated zero bytes
    (about 1 MB on disk per GiB): the record torch.load would inflate before reading it."""
    with (
        zipfile.ZipFile(good) as source,
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target,
    ):
        records = source.infolist()
        victim = next(r.filename for r in records if "/data/" in r.filename)
        for record in records:
            if record.filename != victim:
                target.writestr(record, source.read(record), compress_type=zipfile.ZIP_STORED)
                continue
            chunk = bytes(4 * MB)
            with target.open(victim, "w", force_zip64=True) as handle:
                for _ in range(inflated // len(chunk)):
                    handle.write(chunk)


def test_a_compressed_bomb_is_refused_before_it_inflates(good, tmp_path):
    _, path = good
    bomb = tmp_path / "bomb.pt"
    deflate_bomb(path, bomb, inflated=1024 * MB)
    assert bomb.stat().st_size < 8 * MB
    result = peak_load(path, bomb)
    assert result["outcome"] != "loaded" and "compressed" in result["outcome"], result
    assert result["extra"] < 500 * MB, f"peak RSS {result['extra'] / MB:.0f} MB above baseline"


@pytest.mark.parametrize(("field", "value"), [("k", 3_000_000), ("dim", 4_000_000)])
def test_a_config_asking_for_a_huge_model_is_refused_before_allocation(
    good, tmp_path, field, value
):
    _, path = good
    payload = payload_of(path)
    payload["run"]["state"]["config"][field] = value
    bomb = write(payload, tmp_path / f"{field}.pt")
    assert bomb.stat().st_size < 2 * MB
    result = peak_load(path, bomb)
    assert result["outcome"] != "loaded" and field in result["outcome"], result
    assert result["extra"] < 500 * MB, f"peak RSS {result['extra'] / MB:.0f} MB above baseline"


# ----- the history and the counters --------------------------------------------------------
def _with_snapshot(path: Path, out: Path, **changes: Any) -> Path:
    payload = payload_of(path)
    payload["run"]["history"][-1].update(changes)
    return write(payload, out)


def test_a_history_of_the_wrong_shape_is_refused(good, tmp_path):
    run, path = good
    before = weights_of(run)
    message = refused(_with_snapshot(path, tmp_path / "shape.pt", features=torch.zeros(7, 5)))
    assert "features" in message and "shape" in message
    assert str(APP) not in message.replace(str(tmp_path), "")  # no server paths but the file's
    message = refused(_with_snapshot(path, tmp_path / "hist.pt", theta_target_hist=torch.ones(3)))
    assert "theta_target_hist" in message
    assert weights_of(run) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"loss": math.nan},
        {"test_acc": math.inf},
        {"features": torch.full((100, 2), math.nan)},
        {"weights": torch.full((10, 3, 2), math.inf)},
    ],
    ids=["nan loss", "inf accuracy", "nan features", "inf weights"],
)
def test_a_history_with_nan_or_inf_is_refused(good, tmp_path, changes):
    message = refused(_with_snapshot(good[1], tmp_path / "nan.pt", **changes))
    assert "NaN" in message or "finite" in message


def test_a_nan_history_is_a_clear_one_line_error_for_eval_json(good, tmp_path, capsys):
    from marginlab.cli import main

    path = _with_snapshot(good[1], tmp_path / "nan.pt", loss=math.nan)
    assert main(["eval", "--load", str(path), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "NaN" in captured.err or "finite" in captured.err


@pytest.mark.parametrize(
    ("name", "value"),
    [("steps", -50), ("window_seen", -1), ("elapsed", math.nan), ("steps", 2.5)],
)
def test_negative_or_broken_counters_are_refused(good, tmp_path, name, value):
    payload = payload_of(good[1])
    payload["run"]["state"][name] = value
    assert name in refused(write(payload, tmp_path / "counter.pt"))


def test_a_stride_zero_view_posing_as_a_huge_tensor_is_refused(good, tmp_path):
    payload = payload_of(good[1])
    payload["run"]["history"][0]["features"] = torch.zeros(1).expand(50_000_000)
    path = write(payload, tmp_path / "view.pt")
    assert path.stat().st_size < 2 * MB
    assert "larger than the data stored" in refused(path)


def test_a_shuffled_order_with_indices_out_of_range_is_refused(good, tmp_path):
    payload = payload_of(good[1])
    payload["run"]["state"]["sampler"]["order"] = torch.full((8000,), 10**6, dtype=torch.int64)
    assert "sampler" in refused(write(payload, tmp_path / "order.pt"))


# ----- fuzz: every file either loads and trains, or is refused with the run untouched -------
CONFIG_VALUES = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "arcface", "cuda", "mnist", "none", "fallback", "x" * 300]),
    st.booleans(),
    st.none(),
)
SHAPES = st.lists(st.integers(min_value=0, max_value=12), min_size=0, max_size=3)


def _tensor_slots(payload: dict[str, Any]) -> list[tuple[dict, str]]:
    """(container, key) of every tensor in the run's state and history."""
    state = payload["run"]["state"]
    slots = [(state[part], key) for part in ("backbone", "head") for key in state[part]]
    slots += [(state, "window"), (state, "skipped")]
    for snap in payload["run"]["history"]:
        slots += [(snap, key) for key, value in snap.items() if isinstance(value, torch.Tensor)]
    return slots


def _config_changes() -> st.SearchStrategy:
    fields = sorted(default_config("arcface", 2).to_dict())
    near = st.one_of(st.integers(min_value=-3, max_value=3000), st.floats(-2.0, 70.0))
    return st.dictionaries(st.sampled_from(fields), st.one_of(near, CONFIG_VALUES), max_size=2)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    config_changes=_config_changes(),
    tensor_change=st.one_of(
        st.none(),
        st.tuples(
            st.integers(min_value=0, max_value=10_000),
            SHAPES,
            st.sampled_from([0.0, 1.0, math.nan, -math.inf]),
        ),
    ),
    counter_changes=st.dictionaries(
        st.sampled_from(["steps", "window_seen", "last_loss", "step_seconds", "elapsed"]),
        st.one_of(st.integers(min_value=-100, max_value=100), CONFIG_VALUES),
        max_size=2,
    ),
)
def test_fuzzed_files_load_and_train_or_are_refused(
    good, tmp_path, config_changes, tensor_change, counter_changes
):
    run, path = good
    before = weights_of(run), run.steps
    payload = payload_of(path)
    payload["run"]["state"]["config"].update(config_changes)
    if tensor_change is not None:
        slot, shape, fill = tensor_change
        slots = _tensor_slots(payload)
        container, key = slots[slot % len(slots)]
        container[key] = torch.full(tuple(shape), fill)
    payload["run"]["state"].update(counter_changes)
    fuzzed = write(payload, tmp_path / "fuzzed.pt")
    try:
        loaded = load_run(fuzzed)
    except RunFileError as error:
        event("refused")
        assert str(error) and "\n" not in str(error)
    else:
        event("loaded")
        steps = loaded.steps
        loaded.step(2)
        assert loaded.steps == steps + 2 >= 2  # it trains, from a sensible count
        snapshots = [*loaded.history, loaded.snapshot()]
        assert [s.step for s in snapshots] == sorted(s.step for s in snapshots)
        for snap in snapshots:
            json.dumps(snap.metrics(), allow_nan=False)  # what eval --json prints
            for array in (snap.features, snap.weights):
                assert np.isfinite(array).all()
            assert snap.features.shape == (len(loaded.data.probe_labels), loaded.config.dim)
    assert (weights_of(run), run.steps) == before
