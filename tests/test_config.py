import math

import pytest

from marginlab.lab_state import LabConfig, from_query, run_config, to_query


def test_defaults_round_trip_to_an_empty_query():
    assert to_query(LabConfig()) == {}
    assert from_query({}) == LabConfig()


def test_a_full_configuration_survives_the_url():
    config = LabConfig(
        page="compare",
        dataset="olivetti",
        loss="cosface",
        losses=("arcface", "cosface"),
        dim=3,
        seed=7,
        s=30.0,
        m2=0.35,
        m3=0.1,
        policy="easy",
        lambda_schedule=False,
        presenter=True,
        lesson="lesson-3",
    )
    query = to_query(config)
    assert all(isinstance(v, str) for v in query.values())
    back = from_query(query)
    assert back == config
    assert back.notes == ()


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("dim", "0"),
        ("dim", "2.5"),
        ("s", "nan"),
        ("s", "-3"),
        ("s", "inf"),
        ("m2", "4"),
        ("loss", "<script>alert(1)</script>"),
        ("losses", "arcface,unknown"),
        ("losses", "softmax,normface,sphereface,cosface,arcface,center,combined"),
        ("seed", "1e99"),
        ("presenter", "maybe"),
        ("lesson", "../../etc/passwd"),
        ("page", ""),
        ("s", "1" * 500),
    ],
)
def test_hostile_values_fall_back_to_defaults_with_a_note(key, raw):
    config = from_query({key: raw})
    assert getattr(config, key) == getattr(LabConfig(), key)
    assert len(config.notes) == 1
    assert key in config.notes[0]


def test_good_values_are_kept_next_to_bad_ones():
    config = from_query({"loss": "cosface", "s": "banana", "m3": "0.2", "unknown": "x"})
    assert config.loss == "cosface"
    assert config.s is None
    assert math.isclose(config.m3, 0.2)
    assert len(config.notes) == 1


def test_repeated_values_take_the_last():
    assert from_query({"dim": ["2", "3"]}).dim == 3


def test_loss_lists_drop_duplicates_and_keep_order():
    assert from_query({"losses": "arcface, cosface,arcface"}).losses == ("arcface", "cosface")


def test_run_config_uses_the_engines_defaults_for_unset_values():
    from marginlab.training.config import default_config

    assert run_config(LabConfig(loss="cosface", dim=3)) == default_config("cosface", 3)


def test_run_config_applies_explicit_values_the_loss_uses():
    config = LabConfig(loss="arcface", s=30.0, m2=0.35, m3=0.2, lr=0.003, seed=5, policy="easy")
    run = run_config(config)
    assert (run.s, run.m2, run.lr, run.seed, run.policy) == (30.0, 0.35, 0.003, 5, "easy")
    assert run.m3 == 0.0  # ArcFace has no cosine margin, whatever the URL says


def test_center_lambda_only_switches_center_loss_on_for_center():
    config = LabConfig(center_lambda=0.5)
    assert run_config(config, "arcface").center_lambda == 0.0
    assert run_config(config, "center").center_lambda == 0.5
