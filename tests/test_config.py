import math

import pytest

from marginlab.config import LabConfig, from_query, to_query


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
