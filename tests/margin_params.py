"""The margins the geometry and figure tests draw for the losses whose ψ is target_logit's:
one table (tests/test_geometry.py uses it as is, tests/test_figures.py with its own values
for CosFace and ArcFace and the post-2020 family added)."""

from __future__ import annotations

FIXED_MARGINS: dict[str, dict] = {
    "softmax": {},
    "center": {},
    "normface": {},
    "sphereface": {"sphere_m": 4, "lam": 5.0},
    "sphereface-arccos": {"m1": 1.35},
    "cosface": {"m3": 0.35},
    "arcface": {"m2": 0.5},
    "combined": {"m1": 1.0, "m2": 0.3, "m3": 0.2},
    "subcenter-arcface": {"m2": 0.3},
}
