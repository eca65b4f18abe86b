"""ROC and pair-angle figures of verification reports build, validate and carry every loss."""

import numpy as np
import plotly.graph_objects as go

from marginlab.experiments.verification import verify_embeddings
from marginlab.figures.verification import pair_angle_panels, roc_figure


def _report(seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, 8))
    labels = np.repeat(np.arange(10), 4)
    embeddings = centres[labels] + 0.5 * rng.normal(size=(40, 8))
    return verify_embeddings(embeddings, labels, seed=0)


def test_roc_has_one_curve_per_loss_with_its_numbers():
    reports = {"Softmax": _report(0), "ArcFace": _report(1)}
    fig = go.Figure(roc_figure(reports).to_dict())  # validates every property
    assert [trace.name.split(":")[0] for trace in fig.data] == ["Softmax", "ArcFace"]
    assert f"AUC {reports['ArcFace'].auc:.3f}" in fig.data[1].name
    assert fig.layout.xaxis.type == "log"


def test_pair_angle_panels_show_same_and_different_pairs_per_loss():
    reports = {"Softmax": _report(0), "ArcFace": _report(1)}
    built = pair_angle_panels(reports)
    fig = go.Figure(built.to_dict())  # validates every property
    assert [t.name for t in fig.data] == ["same person", "different people"] * 2
    assert [t.xaxis for t in fig.data] == ["x", "x", "x2", "x2"]
    for trace in built.data:
        assert np.isclose(np.sum(np.asarray(trace.y)), 1.0, atol=1e-5)  # fractions of pairs
