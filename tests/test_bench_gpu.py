"""benchmarks/bench_gpu.py: it runs (quickly, measuring nothing) without CUDA, and its batched
lock-step variant trains the same six models as the engine's loop."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from marginlab.training.comparison import LockstepComparison
from marginlab.training.config import default_config

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from gpu_lockstep import StackedLockstep  # noqa: E402

LOSSES = ("softmax", "normface", "sphereface", "cosface", "arcface", "center")
ITEMS = ("CUDA tests", "heads", "2-D ArcFace", "lock-step", "service", "epoch", "memory", "sync")


def _comparison() -> LockstepComparison:
    configs = [
        default_config(loss, 2, device="cpu", probe_size=200, snapshot_every=10_000)
        for loss in LOSSES
    ]
    return LockstepComparison(configs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_without_cuda_it_says_so_for_every_item_and_exits_0():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_gpu.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for item in ITEMS:
        matching = [line for line in lines if line.lstrip().startswith(item)]
        assert matching and all("not measured: no CUDA device" in line for line in matching), item


@pytest.mark.usefixtures("one_thread")
def test_the_stacked_models_train_like_the_loop():
    comparison = _comparison()
    stacked = StackedLockstep(comparison)  # taken at step 0: same weights, same batches
    comparison.step(4)
    stacked.step(4)
    for k, run in enumerate(comparison):
        for name, parameter in run.backbone.named_parameters():
            torch.testing.assert_close(stacked.params[name][k], parameter, atol=1e-4, rtol=1e-3)
        for name, buffer in run.backbone.named_buffers():
            torch.testing.assert_close(stacked.buffers[name][k], buffer, atol=1e-4, rtol=1e-3)
        for mine, theirs in zip(
            stacked.heads[k].state_dict().values(), run.head.state_dict().values(), strict=True
        ):
            if isinstance(mine, torch.Tensor):
                torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-3)
    assert stacked.heads[2].iteration == comparison["sphereface"].head.iteration  # λ's clock
    assert stacked.skipped.tolist() == [0] * len(LOSSES)


@pytest.mark.usefixtures("one_thread")
def test_a_non_finite_model_keeps_its_state_and_the_others_train():
    stacked = StackedLockstep(_comparison())
    stacked.step(2)
    poisoned = 3
    head = stacked.heads[poisoned]
    compute_loss = head.compute_loss
    head.compute_loss = lambda f, y: compute_loss(f, y) * math.nan  # type: ignore[method-assign]
    before = {name: tensor.clone() for name, tensor in stacked.params.items()}
    head_before = [p.clone() for p in head.parameters()]
    stacked.step(1)
    assert stacked.skipped.tolist() == [0, 0, 0, 1, 0, 0]
    for name, tensor in stacked.params.items():
        assert torch.equal(tensor[poisoned], before[name][poisoned]), name
    assert all(torch.equal(p, q) for p, q in zip(head.parameters(), head_before, strict=True))
    changed = [
        k
        for k in range(len(LOSSES))
        if not torch.equal(stacked.params["embedding.weight"][k], before["embedding.weight"][k])
    ]
    assert changed == [k for k in range(len(LOSSES)) if k != poisoned]
    assert all(torch.isfinite(t).all() for t in stacked.params.values())


def test_stacking_refuses_runs_with_different_learning_rates():
    configs = [default_config("arcface", 2, device="cpu", lr=lr) for lr in (1e-2, 3e-3)]
    with pytest.raises(ValueError, match="same lr"):
        StackedLockstep(LockstepComparison(configs))
