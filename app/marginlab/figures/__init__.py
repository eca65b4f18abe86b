"""Plotly figure builders: arrays in, plotly.graph_objects.Figure out (no Streamlit here).

One import point for the app; the builders live in small modules by job:
- style: the shared class palette, band grey, names and layout helpers;
- views: the unit circle (2-D) and the raw feature plane;
- sphere: the sphere (3-D) and the PCA projection (d > 3);
- parts: what those views draw alike (class markers, weight spokes, their shared start);
- curves: target logit vs θ (ArcFace paper Fig. 4), binary decision margins (Fig. 5),
  target-class probability, pair-angle histograms;
- leads: the histogram of per-sample leads with the requested margin;
- training_curves: training curves with the Table-3 angles;
- phase_map: the (s, m) phase map (experiments.phase_map computes it);
- export: small multiples, self-contained HTML, animated replay.
Every region and curve is computed from marginlab.losses.margins.target_logit (DESIGN.md §3).
"""

from marginlab.figures.curves import (
    BOUNDARY_PANELS,
    PAPER_CURVES,
    binary_boundary_figure,
    pair_angle_figure,
    target_logit_figure,
    target_probability_figure,
)
from marginlab.figures.export import (
    compare_views,
    figure_html,
    figure_to_html,
    replay_figure,
    replay_html,
    small_multiples,
)
from marginlab.figures.leads import lead_histogram_figure
from marginlab.figures.phase_map import phase_map_figure
from marginlab.figures.sphere import projection_figure, sphere_figure
from marginlab.figures.style import BAND_GREY, PALETTE, class_colors, margin_label
from marginlab.figures.training_curves import history_columns, training_curves_figure
from marginlab.figures.views import circle_figure, raw_feature_figure

__all__ = [
    "BAND_GREY",
    "BOUNDARY_PANELS",
    "PALETTE",
    "PAPER_CURVES",
    "binary_boundary_figure",
    "circle_figure",
    "class_colors",
    "compare_views",
    "figure_html",
    "figure_to_html",
    "history_columns",
    "lead_histogram_figure",
    "margin_label",
    "pair_angle_figure",
    "phase_map_figure",
    "projection_figure",
    "raw_feature_figure",
    "replay_figure",
    "replay_html",
    "small_multiples",
    "sphere_figure",
    "target_logit_figure",
    "target_probability_figure",
    "training_curves_figure",
]
