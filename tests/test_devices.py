"""Runs across devices: saved on one device, loaded on another; the CUDA training path.

The CPU half runs everywhere. A file "saved on a GPU" is written the way a GPU machine writes
it: the same torch.save zip whose tensor records carry the location tag "cuda:0" (torch picks
the tag per storage through its serialization registry, which `_tagged_as_cuda` extends), and
whose config says device "cuda". Without CUDA, torch.load of such a file fails unless it maps
the tensors to the CPU, which is what the run files do. Tests marked `cuda` skip without a
CUDA device (conftest) and run in benchmarks/bench_gpu.py on a machine that has one.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import pytest
import torch

from marginlab.cli import main
from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import default_config
from marginlab.training.run import Run
from marginlab.training.run_files import load_comparison, load_run, save_comparison, save_run

HAS_CUDA = torch.cuda.is_available()
HERE = "cuda" if HAS_CUDA else "cpu"  # where "auto" trains on this machine
FAST = {"probe_size": 200, "snapshot_every": 5}

_tag_cpu_storages_as_cuda = False


def _cuda_tag(storage) -> str | None:
    return "cuda:0" if _tag_cpu_storages_as_cuda and storage.device.type == "cpu" else None


def _no_deserializer(storage, location: str) -> None:
    return None  # loading goes on to torch's own CPU / CUDA deserializers


torch.serialization.register_package(1, _cuda_tag, _no_deserializer)


@contextlib.contextmanager
def _tagged_as_cuda():
    """While inside, torch.save records every CPU tensor as living on cuda:0."""
    global _tag_cpu_storages_as_cuda
    _tag_cpu_storages_as_cuda = True
    try:
        yield
    finally:
        _tag_cpu_storages_as_cuda = False


def _as_saved_on_a_gpu(run: Run) -> None:
    """What a CUDA run carries into its file besides the tensors' location."""
    run.config = run.config.with_changes(device="cuda")
    for group in run.optimizer.param_groups:
        group["capturable"] = True


def _cpu_run(loss: str = "arcface", steps: int = 10) -> Run:
    run = Run(default_config(loss, 2, device="cpu", **FAST))
    run.step(steps)
    return run


def _close(a: dict[str, float], b: dict[str, float], exact: bool) -> bool:
    if exact:
        return a == b
    return all(math.isclose(a[k], b[k], rel_tol=1e-3, abs_tol=1e-3) for k in a)


@pytest.fixture(scope="module")
def gpu_file(tmp_path_factory) -> tuple[Path, dict[str, float], int]:
    run = _cpu_run("cosface")
    expected = run.evaluate()
    _as_saved_on_a_gpu(run)
    path = tmp_path_factory.mktemp("devices") / "gpu-run.pt"
    with _tagged_as_cuda():
        save_run(run, path)
    return path, expected, run.steps


@pytest.mark.usefixtures("one_thread")
def test_a_gpu_file_needs_the_map_to_the_cpu(gpu_file):
    path, _, _ = gpu_file
    if HAS_CUDA:
        pytest.skip("with CUDA here the file loads as it is")
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(path, weights_only=True)  # the tags really say cuda
    torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.usefixtures("one_thread")
def test_a_run_saved_on_a_gpu_loads_here_and_trains_on(gpu_file):
    path, expected, steps = gpu_file
    run = load_run(path)
    assert run.device.type == HERE
    assert run.config.device == ("cuda" if HAS_CUDA else "auto")
    assert run.steps == steps and _close(run.evaluate(), expected, exact=not HAS_CUDA)
    assert all(g["capturable"] == HAS_CUDA for g in run.optimizer.param_groups)
    run.step(3)
    assert run.steps == steps + 3 and not run.nan_seen
    cpu = load_run(path, device="cpu")
    assert cpu.device.type == "cpu" and cpu.evaluate() == expected


@pytest.mark.usefixtures("one_thread")
def test_eval_of_a_gpu_file_on_this_machine(gpu_file, capsys):
    path, expected, steps = gpu_file
    assert main(["eval", "--load", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["device"].startswith(HERE) and result["steps"] == steps
    assert math.isclose(result["test_acc"], expected["test_acc"], abs_tol=1e-3)


@pytest.mark.usefixtures("one_thread")
def test_a_comparison_saved_on_a_gpu_loads_here(tmp_path):
    configs = [default_config(loss, 2, device="cpu", **FAST) for loss in ("softmax", "arcface")]
    comparison = LockstepComparison(configs)
    comparison.step(4)
    expected = {name: run.evaluate() for name, run in comparison.runs.items()}
    for run in comparison:
        _as_saved_on_a_gpu(run)
    path = tmp_path / "gpu-comparison.pt"
    with _tagged_as_cuda():
        save_comparison(comparison, path)
    loaded = load_comparison(path)
    for name, run in loaded.runs.items():
        assert run.device.type == HERE and run.steps == 4
        assert _close(run.evaluate(), expected[name], exact=not HAS_CUDA)
    loaded.step(2)
    assert loaded.steps == 6


@pytest.mark.parametrize("saved_on", ["gpu", "cpu"])
def test_the_lab_opens_a_file_from_another_device_and_keeps_it(gpu_file, tmp_path, saved_on):
    """Uploaded, then one more rerun: the loaded run must stay (its device is part of the
    trainer's identity; a Lab on "auto" used to rebuild a run saved with device "cpu")."""
    from test_app_pages import page

    if saved_on == "gpu":
        path, _, steps = gpu_file
    else:
        run = _cpu_run("cosface", steps=7)
        path, steps = save_run(run, tmp_path / "cpu-run.pt"), run.steps
    at = page("views/lab.py")
    at.file_uploader(key="lab_upload").upload("run.pt", path.read_bytes()).run()
    at.run()
    assert not at.exception and not at.error
    run = at.session_state["lab"].runs[0]
    assert (run.config.loss, run.steps, run.device.type) == ("cosface", steps, HERE)
    assert any(f"Device: {HERE}" in caption.value for caption in at.caption)


def test_an_unknown_saved_device_is_still_an_error(tmp_path):
    run = _cpu_run(steps=1)
    path = save_run(run, tmp_path / "run.pt")
    payload = torch.load(path, weights_only=True)
    payload["run"]["state"]["config"]["device"] = "tpu"
    torch.save(payload, path)
    from marginlab.training.run_files import RunFileError

    with pytest.raises(RunFileError, match="unknown device 'tpu'"):
        load_run(path)


# ----- on a CUDA device (skip elsewhere) ------------------------------------------------------
@pytest.mark.cuda
def test_a_cpu_run_loads_onto_cuda_and_back(tmp_path):
    run = _cpu_run("sphereface")
    expected = run.evaluate()
    path = save_run(run, tmp_path / "cpu-run.pt")
    gpu = load_run(path, device="cuda")
    assert gpu.device.type == "cuda" and gpu.steps == run.steps
    assert all(g["capturable"] for g in gpu.optimizer.param_groups)
    assert _close(gpu.evaluate(), expected, exact=False)
    gpu.step(5)
    back = load_run(save_run(gpu, tmp_path / "gpu-run.pt"), device="cpu")
    assert back.device.type == "cpu" and back.steps == run.steps + 5
    assert _close(back.evaluate(), gpu.evaluate(), exact=False)
    back.step(2)  # AdamW's step counts came back from the GPU as CPU tensors
    assert not back.nan_seen


@pytest.mark.cuda
@pytest.mark.parametrize("loss", ["arcface", "sphereface", "center", "subcenter-arcface"])
def test_a_cuda_step_never_waits_for_the_device(loss):
    """The sync-free guard and capturable AdamW: no host synchronisation inside a step
    (snapshots, which read the device on purpose, are out of the window)."""
    run = Run(default_config(loss, 2, device="cuda", probe_size=200, snapshot_every=10_000))
    assert run.sync_free_guard and run.optimizer.param_groups[0]["capturable"]
    run.step(2)  # the first snapshot and the epoch's index copy happen here
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        run.step(20)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert run.steps == 22 and not run.nan_seen


@pytest.mark.cuda
def test_the_cuda_guard_skips_a_poisoned_step_like_the_checked_one():
    runs = []
    for sync_free in (True, False):
        run = Run(default_config("cosface", 2, device="cuda", **FAST))
        run.sync_free_guard = sync_free
        compute_loss = run.head.compute_loss

        def poisoned(features, labels, run=run, compute_loss=compute_loss):
            loss = compute_loss(features, labels)
            return loss * math.nan if run.steps in (0, 3) else loss

        run.head.compute_loss = poisoned  # type: ignore[method-assign]
        run.step(6)
        runs.append(run)
    assert runs[0].skipped_steps == runs[1].skipped_steps == 2
    for a, b in zip(runs[0].backbone.parameters(), runs[1].backbone.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)


@pytest.mark.cuda
def test_cli_trains_and_compares_on_cuda(tmp_path, capsys):
    path = tmp_path / "run.pt"
    args = ["--steps", "20", "--device", "cuda", "--json", "--threads", "1"]
    assert main(["train", "--loss", "arcface", "--save", str(path), *args]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["device"].startswith("cuda") and result["nan_seen"] is False
    assert main(["compare", "--losses", "softmax,arcface,cosface", *args]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert compared["device"].startswith("cuda")
    assert main(["eval", "--load", str(path), "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["device"] == "cpu"


@pytest.mark.cuda
def test_the_lab_trains_on_cuda_when_asked():
    pytest.importorskip("streamlit", reason="the app's packages are not on this GPU machine")
    from test_app_pages import page

    at = page("views/lab.py", {"device": "cuda"})
    {b.label: b for b in at.button}["Step"].click().run()
    assert not at.exception and not at.info
    run = at.session_state["lab"].runs[0]
    assert run.device.type == "cuda" and run.steps == 5
    assert at.selectbox(key="control_device").value == "cuda"
