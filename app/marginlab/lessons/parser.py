"""Lesson files → presets for the lab.

A lesson is one Markdown file in lessons/ with a TOML header between two `+++` lines:

    +++
    title = "The additive angular margin"
    paper = "Deng et al., ArcFace, CVPR 2019"
    loss = "arcface"            # or losses = [...] for a side-by-side lesson
    dim = 2
    s = 16.0
    m2 = 0.3
    seed = 0
    pretrain_steps = 300
    figures = ["view", "target_logit"]
    [claim]
    text = "The margin band on the circle is m wide."
    check = "band_width_equals_margin"
    +++
    ## Look at
    ...
    ## Try this
    1. ...
    ## Question
    ...
    ## Answer
    ...

The header names only settings the lab has (LabConfig's fields), so a lesson cannot ask for
something the app cannot show. A malformed file raises LessonError naming the file and line;
`load_lessons` collects such errors and still returns every good lesson.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marginlab.lab_state import PARSERS, LabConfig

LESSONS_DIR = Path(__file__).resolve().parents[3] / "lessons"
FIGURES: tuple[str, ...] = (
    "view",
    "raw",
    "target_logit",
    "theta_hist",
    "curves",
    "boundary",
    "probability",
    # the margins that adapt (figures.run.adaptive_figures; drawn for those losses only)
    "family",
    "norms",
    "state",
)
SECTIONS: tuple[str, ...] = ("Look at", "Try this", "Question", "Answer")
PRESET_KEYS = tuple(name for name in PARSERS if name not in ("page", "lesson", "speed"))
LESSON_KEYS = ("title", "paper", "pretrain_steps", "figures", "claim", "order")
MAX_ORDER = 10_000
MAX_TEXT = 1000  # a title, a citation or a claim is one sentence or two


class LessonError(ValueError):
    """A lesson file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class Claim:
    text: str
    check: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    paper: str
    order: int
    preset: LabConfig
    pretrain_steps: int
    figures: tuple[str, ...]
    claim: Claim
    sections: dict[str, str]
    path: Path

    @property
    def query(self) -> dict[str, str]:
        """The URL query that opens this lesson (the app's shareable state)."""
        return {"page": "lessons", "lesson": self.id}


def parse_lesson(text: str, path: Path) -> Lesson:
    header, header_start, body = _split_front_matter(text, path)
    try:
        meta = tomllib.loads(header)
    except tomllib.TOMLDecodeError as error:
        line = header_start + _toml_error_line(error)
        raise LessonError(f"{path.name}, line {line}: bad TOML header: {error}") from None

    def fail(key: str, message: str) -> LessonError:
        return LessonError(f"{path.name}, line {_line_of(key, header, header_start)}: {message}")

    for key in meta:
        if key not in PRESET_KEYS and key not in LESSON_KEYS:
            raise fail(key, f"unknown header key {key!r}")
    for key in ("title", "paper", "claim"):
        if key not in meta:
            raise LessonError(f"{path.name}, line {header_start}: the header needs {key!r}")

    preset_values: dict[str, Any] = {}
    for key in PRESET_KEYS:
        if key in meta:
            try:
                preset_values[key] = PARSERS[key](_as_text(meta[key]))
            except ValueError as error:
                raise fail(key, f"{key} {error}") from None
    lesson_id = path.stem
    preset = LabConfig(page="lessons", lesson=lesson_id, **preset_values)
    if "losses" in preset_values and "loss" not in preset_values:
        preset = preset.with_changes(loss=preset.losses[0])

    figures = meta.get("figures", ["view", "target_logit"])
    if not isinstance(figures, list) or any(
        not isinstance(f, str) or f not in FIGURES for f in figures
    ):
        raise fail("figures", f"figures must be a list drawn from {', '.join(FIGURES)}")
    steps = _whole(meta.get("pretrain_steps", 0), 0, 5000)
    if steps is None:
        raise fail("pretrain_steps", "pretrain_steps must be a whole number in [0, 5000]")
    order = _whole(meta.get("order", 0), 0, MAX_ORDER)
    if order is None:
        raise fail("order", f"order must be a whole number in [0, {MAX_ORDER}]")
    for key in ("title", "paper"):
        if not _text(meta[key]):
            raise fail(key, f"{key} must be text of 1 to {MAX_TEXT} characters")
    claim = meta["claim"]
    if not isinstance(claim, dict) or not {"text", "check"} <= set(claim):
        raise fail("claim", "[claim] needs text and check")
    for key in ("text", "check"):
        if not _text(claim[key]):
            raise fail(key, f"the claim's {key} must be text of 1 to {MAX_TEXT} characters")
    if not isinstance(claim.get("params", {}), dict):
        raise fail("params", "the claim's params must be a table (params = { name = value })")

    sections = _sections(body)
    missing = [name for name in SECTIONS if name not in sections]
    if missing:
        raise LessonError(
            f"{path.name}: missing section(s) {', '.join('## ' + m for m in missing)}"
        )
    return Lesson(
        id=lesson_id,
        title=meta["title"],
        paper=meta["paper"],
        order=order,
        preset=preset,
        pretrain_steps=steps,
        figures=tuple(figures),
        claim=Claim(claim["text"], claim["check"], dict(claim.get("params", {}))),
        sections=sections,
        path=path,
    )


def load_lessons(folder: Path = LESSONS_DIR) -> tuple[list[Lesson], list[str]]:
    """Every good lesson in `folder` (in course order) and one message per bad file."""
    lessons: list[Lesson] = []
    errors: list[str] = []
    for path in sorted(folder.glob("*.md")):
        try:
            lessons.append(parse_lesson(path.read_text(encoding="utf-8"), path))
        except (LessonError, OSError, UnicodeDecodeError) as error:
            errors.append(str(error) if isinstance(error, LessonError) else f"{path.name}: {error}")
        except Exception as error:  # a case the checks above missed: still one file, one line
            errors.append(f"{path.name}, line 1: cannot be read as a lesson ({error})")
    lessons.sort(key=lambda lesson: (lesson.order, lesson.id))
    return lessons, errors


def _whole(value: Any, low: int, high: int) -> int | None:
    """`value` if it is a whole number in [low, high] (TOML's true is not one), else None."""
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    return value if ok else None


def _text(value: Any) -> bool:
    return isinstance(value, str) and len(value.strip()) > 0 and len(value) <= MAX_TEXT


def _as_text(value: Any) -> str:
    """TOML values as the text the URL parsers take (one validation path for both)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def _split_front_matter(text: str, path: Path) -> tuple[str, int, str]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "+++":
        raise LessonError(f"{path.name}, line 1: a lesson starts with a '+++' header line")
    for index in range(1, len(lines)):
        if lines[index].strip() == "+++":
            return "\n".join(lines[1:index]), 2, "\n".join(lines[index + 1 :])
    raise LessonError(f"{path.name}, line 1: the '+++' header is never closed")


def _toml_error_line(error: tomllib.TOMLDecodeError) -> int:
    found = re.search(r"line (\d+)", str(error))
    return int(found.group(1)) - 1 if found else 0


def _line_of(key: str, header: str, header_start: int) -> int:
    pattern = re.compile(rf"^\s*(\[\s*)?{re.escape(key)}\s*(=|\])")
    for offset, line in enumerate(header.splitlines()):
        if pattern.match(line):
            return header_start + offset
    return header_start


def _sections(body: str) -> dict[str, str]:
    sections: dict[str, str] = {}
    current: str | None = None
    for line in body.splitlines():
        heading = re.match(r"^##\s+(.+?)\s*$", line)
        if heading:
            current = heading.group(1)
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return {name: text.strip() for name, text in sections.items()}
