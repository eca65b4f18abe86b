"""The command line, an outside contract: JSON fields, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from marginlab.cli import COMMANDS, main

# Small, fast settings shared by the commands that train.
FAST = ["--threads", "1", "--probe-size", "200", "--snapshot-every", "10"]
RUN_FIELDS = {"loss", "train_acc", "test_acc", "steps", "seconds", "nan_seen", "device", "config"}


@pytest.fixture(autouse=True)
def keep_thread_count():
    """In-process commands run with --threads 1; give the rest of the session its threads back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def marginlab(*args: str, **env_changes: str) -> subprocess.CompletedProcess:
    """`python -m marginlab ARGS` in a fresh process, with the environment plus env_changes."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **env_changes}
    return subprocess.run(
        [sys.executable, "-m", "marginlab", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`train --json --save` once, as a subprocess (the real entry point)."""
    path = tmp_path_factory.mktemp("cli") / "run.pt"
    done = marginlab("train", "--loss", "cosface", "--dim", "3", "--steps", "20",
                     "--save", str(path), "--json", *FAST)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), path


def test_train_json_has_the_contract_fields(trained):
    result, path = trained
    assert set(result) >= RUN_FIELDS
    assert result["steps"] == 20 and result["nan_seen"] is False
    assert result["config"]["loss"] == "cosface" and result["config"]["dim"] == 3
    assert 0 <= result["test_acc"] <= 1 and 0 <= result["train_acc"] <= 1
    assert result["device"] == "cpu" and result["saved"] == str(path)


def test_train_json_reports_leads_and_table3_on_the_test_set(trained):
    """The lead fields are on the same images as test_acc: CosFace predicts by the largest
    cosine, so the fraction of test images with a positive lead IS its test accuracy."""
    result, _ = trained
    angles = ("w_ec_deg", "w_inter_deg", "intra_deg", "inter_deg", "median_lead_deg")
    assert all(-180 <= result[name] <= 180 for name in angles)
    assert result["lead_positive"] == pytest.approx(result["test_acc"], abs=1e-6)
    assert 0 <= result["margin_met"] <= result["lead_positive"]
    assert "test set" in result["test_acc_on"]


def test_eval_of_the_saved_run_gives_the_same_metrics(trained, capsys):
    result, path = trained
    assert main(["eval", "--load", str(path), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    same = ("test_acc", "loss", "train_acc", "steps", "config", "init_hash", "lead_positive")
    for field in (*same, "margin_met"):
        assert evaluated[field] == result[field], field
    # Measured again on the loaded weights (bit for bit the saved ones): the same up to float32
    # rounding. On an AVX-512 build machine the mean test loss differed in the 8th digit
    # (2.36090933 against 2.36090932); why the kernels added in another order there was not
    # looked into.
    for field in ("test_loss", "median_lead_deg", "w_ec_deg"):
        assert evaluated[field] == pytest.approx(result[field], rel=1e-6), field


def test_compare_json_has_one_entry_per_loss_with_init_hash(capsys):
    code = main(["compare", "--losses", "softmax,arcface,center", "--steps", "6", "--json", *FAST])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["losses"]) == ["softmax", "arcface", "center"]
    for entry in result["losses"].values():
        assert RUN_FIELDS | {"init_hash"} <= set(entry)
        assert entry["steps"] == 6
    assert len({e["init_hash"] for e in result["losses"].values()}) == 1
    assert result["same_initial_weights"] is True


def test_seconds_budget_and_plain_output(capsys):
    assert main(["train", "--seconds", "0.5", *FAST]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("arcface: test acc") and out.out.count("\n") == 1
    assert out.err == ""  # no progress bar when stderr is not a terminal


# The real entry point in subprocesses, started together: each pays torch's import time.
BAD_ARGUMENTS = {
    "unknown loss": ["train", "--loss", "nope"],
    "--dim": ["train", "--dim", "0"],
    "scale s must lie in [1, 128]": ["train", "--s", "-1"],  # the table's range
    "unknown dataset": ["train", "--dataset", "nope"],
    "no such run file": ["eval", "--load", "/no/such/run.pt"],
}


def test_bad_arguments_exit_nonzero_with_one_line_and_no_traceback():
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    started = {
        expected: subprocess.Popen(
            [sys.executable, "-m", "marginlab", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for expected, args in BAD_ARGUMENTS.items()
    }
    for expected, process in started.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode != 0, expected
        assert err.count("\n") == 1 and expected in err, err
        assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "--losses", "arcface,nope"],
        ["compare", "--losses", ",".join(["arcface"] * 7)],
        ["train", "--steps", "ten"],
        ["train", "--steps", "5", "--seconds", "1"],
        ["train", "--m2", "9"],
        ["train", "--batch-size", "0"],
        ["bogus"],
        [],
    ],
)
def test_more_bad_arguments_in_process(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("marginlab")


def test_a_foreign_file_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "notes.pt"
    path.write_text("not a run")
    assert main(["eval", "--load", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable marginlab run file" in err


def test_commands_live_in_one_table():
    assert {"train", "compare", "eval"} <= set(COMMANDS)
    for command in COMMANDS.values():
        assert callable(command.run) and callable(command.add_arguments)
