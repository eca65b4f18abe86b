"""What a loss's formula is, as text: shared by formulas.py (the 2016–2019 family) and
adaptive_formulas.py (the post-2020 family)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Formula:
    name: str
    paper: str
    general: str  # the loss for one sample, LaTeX
    substituted: str  # the target logit with the current numbers, LaTeX
    note: str  # one or two sentences of plain text


CROSS_ENTROPY = r"L = -\log \frac{e^{z_y}}{e^{z_y} + \sum_{j \neq y} e^{z_j}}"


def number(value: float) -> str:
    """A number as a formula shows it: four significant digits."""
    return f"{value:.4g}"
