"""The CLI's probes of issue 16: one device rule for every command, bounds on threads, seeds and
steps, and stdout that carries only the result (notices and library chatter go to stderr)."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

from test_cli import marginlab as marginlab_cli

HAS_CUDA = torch.cuda.is_available()


def one_line_exit_2(done: subprocess.CompletedProcess, *expected: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-500:])
    assert done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr


def test_verify_resolves_auto_like_every_command(shared_data_dir):
    """`verify` with its default device trains (it used to reach torch.device("auto"))."""
    done = marginlab_cli(
        "verify", "--losses", "arcface", "--dim", "4", "--steps", "2", "--json",
        MARGINLAB_CACHE=str(shared_data_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-800:]
    result = json.loads(done.stdout)
    assert result["config"]["device"] == "auto"
    assert set(result["losses"]) == {"arcface"}


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA: --device cuda is available")
@pytest.mark.parametrize(
    "args",
    [
        ["train", "--steps", "1"],
        ["compare", "--losses", "softmax,arcface", "--steps", "1"],
        ["eval", "--load", "no-such-file.pt"],
        ["verify", "--steps", "1"],
    ],
    ids=["train", "compare", "eval", "verify"],
)
def test_a_device_that_is_not_there_is_one_line_and_exit_2(args):
    one_line_exit_2(marginlab_cli(*args, "--device", "cuda"), "cuda", "not available")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "--steps", "1", "--threads", "100000"], "--threads"),
        (["train", "--threads", "0"], "--threads"),
        (["train", "--steps", "1", "--seed", str(2**32)], "seed"),
        (["compare", "--steps", "1", "--seed", "-3"], "seed"),
        (["verify", "--seed", "-1"], "--seed"),
        (["verify", "--steps", "-1"], "--steps"),
        (["train", "--device", "tpu"], "unknown device"),
    ],
)
def test_bounds_on_threads_seeds_and_steps(args, expected):
    one_line_exit_2(marginlab_cli(*args), expected)


def test_mnist_offline_says_so_on_stderr_and_json_stays_clean(tmp_path):
    """Offline (no network here, an empty cache), `--dataset mnist` trains on the subset and
    says why on stderr; stdout is exactly one JSON object."""
    done = marginlab_cli(
        "train", "--dataset", "mnist", "--steps", "2", "--probe-size", "50", "--threads", "1",
        "--json", MARGINLAB_CACHE=str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-800:]
    json.loads(done.stdout)  # nothing else on stdout
    assert done.stdout.count("\n") == 1
    assert "shipped subset" in done.stderr and "MNIST" in done.stderr


def test_the_face_fetchers_messages_never_reach_stdout(tmp_path):
    """scikit-learn prints "downloading Olivetti faces ..." on stdout before it downloads.
    Offline the download fails (one line, exit 1) and stdout stays empty."""
    done = marginlab_cli(
        "verify", "--steps", "1", "--json",
        MARGINLAB_CACHE=str(tmp_path / "cache"), SCIKIT_LEARN_DATA=str(tmp_path / "sk"),
        HOME=str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-800:]
    assert done.stdout == ""
    assert "Olivetti" in done.stderr.splitlines()[-1]
