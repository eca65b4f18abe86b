"""The (s, m) phase map on real short runs, and its resumable cache."""

import pytest

from marginlab.experiments.phase_map import phase_map, short_run_trainer


def test_a_small_sweep_trains_every_cell_and_reloads_from_the_cache(tmp_path):
    calls = []

    def count(done, total, s, m):
        calls.append((done, total, s, m))

    result = phase_map(
        "arcface",
        2,
        steps=20,
        s_values=(1.0, 16.0),
        m_values=(0.0, 0.2),
        cache_dir=tmp_path,
        progress=count,
    )
    assert [c[0] for c in calls] == [1, 2, 3, 4]
    assert all(o in ("ok", "collapsed", "nan") for row in result["outcome"] for o in row)
    accuracy = result["accuracy"]
    assert all(0.0 <= a <= 1.0 for row in accuracy for a in row)
    assert result["nan_seen"] == [[False, False], [False, False]]
    calls.clear()
    again = phase_map(
        "arcface",
        2,
        steps=20,
        s_values=(1.0, 16.0),
        m_values=(0.0, 0.2),
        cache_dir=tmp_path,
        progress=count,
    )
    assert calls == []  # nothing retrained
    assert again["accuracy"] == accuracy
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_the_phase_map_needs_a_margin_loss():
    with pytest.raises(ValueError, match="margin loss"):
        short_run_trainer("softmax", 2, steps=10)
