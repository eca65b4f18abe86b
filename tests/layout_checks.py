"""Reads a rendered page's plotly figures and reports text that overlaps or leaves its figure.

Used by the layout browser test (issue "What the class sees"): every figure's title, axis
titles, legend entries and annotations are measured with getBoundingClientRect in the real
browser, so the check sees what a student sees, not what the figure JSON asks for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Selectors of the text plotly draws for a figure (plotly.js class names).
_COLLECT_JS = """
(tolerance) => {
  const kinds = [
    ['title', '.g-gtitle text.gtitle'],
    ['axis title', '[class*="title"] > text[class$="title"]:not(.gtitle):not(.legendtitletext)'],
    ['legend entry', '.legend .traces text.legendtext'],
    ['annotation', '.annotation text.annotation-text'],
  ];
  const problems = [];
  const figures = Array.from(document.querySelectorAll('.js-plotly-plot'));
  figures.forEach((fig, index) => {
    const box = fig.getBoundingClientRect();
    if (box.width < 2 || box.height < 2) return;  // not displayed (a closed tab or expander)
    const name = (fig.querySelector('.gtitle') || {}).textContent || `figure ${index + 1}`;
    const items = [];
    for (const [kind, selector] of kinds) {
      for (const el of fig.querySelectorAll(selector)) {
        const text = (el.textContent || '').trim();
        if (!text) continue;
        const r = el.getBoundingClientRect();
        if (r.width === 0 && r.height === 0) continue;
        // A legend entry scrolled out of view is clipped, which is itself a problem: report it.
        items.push({kind, text, left: r.left, right: r.right, top: r.top, bottom: r.bottom});
      }
    }
    for (const it of items) {
      if (it.left < box.left - tolerance || it.right > box.right + tolerance ||
          it.top < box.top - tolerance || it.bottom > box.bottom + tolerance) {
        problems.push(`${name}: ${it.kind} "${it.text}" extends outside its figure`);
      }
    }
    for (let i = 0; i < items.length; i++) {
      for (let j = i + 1; j < items.length; j++) {
        const a = items[i], b = items[j];
        const dx = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const dy = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (dx > tolerance && dy > tolerance) {
          problems.push(`${name}: ${a.kind} "${a.text}" overlaps ${b.kind} "${b.text}"`);
        }
      }
    }
  });
  return {figures: figures.length, problems};
}
"""


def figure_text_problems(page: Page, *, tolerance_px: float = 1.0) -> tuple[int, list[str]]:
    """(number of figures on the page, one line per overlapping or escaping text item)."""
    result = page.evaluate(_COLLECT_JS, tolerance_px)
    return int(result["figures"]), list(result["problems"])
