"""`compare --seeds` (cli_sweeps.py): a sweep's seed gives what the command gives for that
seed alone, and bad sweep arguments are one line with exit code 2."""

from __future__ import annotations

import json

import pytest

from marginlab.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ["--losses", "softmax,arcface", "--steps", "6", "--probe-size", "200", "--json"]


def _json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_a_seed_of_the_sweep_equals_that_seed_alone(capsys):
    swept = _json(capsys, ["compare", *SMALL, "--seeds", "0,3", "--executor", "serial"])
    alone = _json(capsys, ["compare", *SMALL, "--seed", "3"])
    assert swept["executor"] == "serial" and sorted(swept["seeds"]) == ["0", "3"]
    for name, entry in alone["losses"].items():
        cell = swept["seeds"]["3"]["losses"][name]
        assert cell["test_acc"] == entry["test_acc"] and cell["init_hash"] == entry["init_hash"]
        assert cell["config"]["seed"] == 3
    assert swept["seeds"]["0"]["losses"]["arcface"]["init_hash"] != cell["init_hash"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--seeds", "1,x"], "--seeds takes whole numbers"),
        (["compare", "--seeds", "-1"], "--seeds needs seeds in"),
        (["compare", "--seeds", "1,2", "--save", "x.pt"], "--save keeps one run"),
        (["verify", "--seeds", "1", "--executor", "gpu"], "invalid choice"),
    ],
)
def test_bad_sweep_arguments_are_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
