"""Saving and loading runs: exact round trips, atomic writes, and clear errors for bad files."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from conftest import TOY_PROBE
from marginlab.training.backbones import state_hash
from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import default_config
from marginlab.training.run import Run
from marginlab.training.run_files import (
    FORMAT,
    RunFileError,
    load_comparison,
    load_run,
    read_kind,
    save_comparison,
    save_run,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def config(loss: str = "arcface", **changes):
    return default_config(loss, 2, device="cpu", probe_size=TOY_PROBE, snapshot_every=5, **changes)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, data):
    """A centre-loss run (it has centres, a buffer) trained 12 steps and saved."""
    run = Run(config("center"), data=data)
    run.step(12)
    path = tmp_path_factory.mktemp("runs") / "run.pt"
    save_run(run, path)
    return run, path


def weights_of(run: Run) -> str:
    return state_hash(run.backbone) + state_hash(run.head)


def test_save_load_evaluate_gives_identical_metrics(saved):
    run, path = saved
    loaded = load_run(path)
    assert weights_of(loaded) == weights_of(run)
    assert loaded.evaluate() == run.evaluate()
    assert loaded.steps == run.steps and loaded.config == run.config
    assert loaded.init_hash == run.init_hash
    assert [s.metrics() for s in loaded.history] == [s.metrics() for s in run.history]
    assert (loaded.history[-1].features == run.history[-1].features).all()
    assert read_kind(path) == "run"


def test_a_loaded_run_resumes_exactly_like_one_never_saved(tmp_path, data):
    for loss in ("sphereface", "arcface"):  # λ's clock; the margin warm-up in mid-ramp
        straight = Run(config(loss), data=data)
        straight.step(14)
        first = Run(config(loss), data=data)
        first.step(7)
        save_run(first, tmp_path / f"{loss}.pt")
        resumed = load_run(tmp_path / f"{loss}.pt")
        resumed.step(7)
        assert weights_of(resumed) == weights_of(straight)
        assert resumed.latest_snapshot().metrics() | {"wall_time": 0} == (
            straight.latest_snapshot().metrics() | {"wall_time": 0}
        )


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, saved):
    run, _ = saved
    path = tmp_path / "run.pt"
    path.write_bytes(b"old contents")
    save_run(run, path)
    assert load_run(path).steps == run.steps
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]
    with pytest.raises(OSError):
        save_run(run, tmp_path / "no-such-dir" / "run.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]


def _bad_files(tmp_path: Path, good: Path) -> dict[str, Path]:
    blob = good.read_bytes()
    files = {
        "truncated": blob[: len(blob) // 2],
        "corrupt": blob[:100] + bytes(200) + blob[300:],
        "empty": b"",
        "text": b"hello, this is not a run\n",
    }
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f"{name}.pt"
        paths[name].write_bytes(content)
    torch.save({"weights": torch.ones(3)}, tmp_path / "foreign.pt")  # a torch file, not ours
    paths["foreign"] = tmp_path / "foreign.pt"
    torch.save({"format": FORMAT, "version": 99, "kind": "run"}, tmp_path / "future.pt")
    paths["future"] = tmp_path / "future.pt"
    torch.save({"format": FORMAT, "version": 1, "kind": "run", "run": {}}, tmp_path / "hollow.pt")
    paths["hollow"] = tmp_path / "hollow.pt"
    # A pickle that would run code if unpickled without weights_only.
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump(_Evil(), handle)
    paths["evil"] = tmp_path / "evil.pt"
    paths["missing"] = tmp_path / "missing.pt"
    return paths


class _Evil:
    def __reduce__(self):
        return (Path("/tmp/marginlab-evil-was-unpickled").touch, ())


def test_bad_files_raise_one_line_run_file_errors_and_change_nothing(tmp_path, saved):
    run, good = saved
    before = weights_of(run), run.steps, good.read_bytes()
    for name, path in _bad_files(tmp_path, good).items():
        listing = sorted(p.name for p in tmp_path.iterdir())
        content = path.read_bytes() if path.exists() else None
        with pytest.raises(RunFileError) as caught:
            load_run(path)
        message = str(caught.value)
        assert "\n" not in message and message, name
        assert path.name in message, name
        assert sorted(p.name for p in tmp_path.iterdir()) == listing  # nothing written
        assert (path.read_bytes() if path.exists() else None) == content
    assert not Path("/tmp/marginlab-evil-was-unpickled").exists()
    assert (weights_of(run), run.steps, good.read_bytes()) == before


def test_a_comparison_file_is_not_a_run_file(tmp_path, data):
    comparison = LockstepComparison([config("softmax"), config("cosface")], data=data)
    comparison.step(6)
    path = tmp_path / "compare.pt"
    save_comparison(comparison, path)
    assert read_kind(path) == "comparison"
    with pytest.raises(RunFileError, match="not a run"):
        load_run(path)
    loaded = load_comparison(path)
    assert loaded.names == comparison.names and loaded.steps == 6
    for name in comparison.names:
        assert weights_of(loaded[name]) == weights_of(comparison[name])
        assert loaded[name].evaluate() == comparison[name].evaluate()
    # the shared sampler resumes too: both go on in lock-step identically
    comparison.step(3)
    loaded.step(3)
    for name in comparison.names:
        assert weights_of(loaded[name]) == weights_of(comparison[name])
