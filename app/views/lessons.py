"""Lessons: a guided course through the geometry; each lesson beside a live lab on its preset.

The lesson's link (?page=lessons&lesson=<id> plus the preset) reproduces the lesson: a teacher
sends it and the class gets the same setup. Every lesson states one claim, and "Check this
claim" trains the lesson's preset from scratch and measures it (marginlab.lessons.checks).
"""

import os
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from marginlab.lab_state import LabConfig, run_config, to_query, tunable_params
from marginlab.lessons.checks import ClaimResult
from marginlab.lessons.parser import LESSONS_DIR, PRESET_KEYS, Lesson, load_lessons
from marginlab.training.service.builders import new_comparison, new_run
from ui.claims import shared_check
from ui.controls import (
    LOSS_NAMES,
    margin_controls,
    presenter_toggle,
    setup_controls,
    show_value,
    training_controls,
)
from ui.live import LiveTraining, reset
from ui.live_page import live_page
from ui.panels import fast_forward, metrics_strip, metrics_table, show_figures
from ui.presenter import presenter_css
from ui.state import current_config, page_setup, set_config
from ui.text import plain

SLOT = "lesson"
PICK_KEY = "lesson_pick"
LOADED_KEY = "lesson_loaded"  # the lesson whose preset this session loaded last
RESULT_KEY = "lesson_claim_results"
FACE_DATASETS = ("olivetti", "lfw")
FACES_PAGE = Path(__file__).parent / "faces.py"


def lessons_dir() -> Path:
    """The course folder: $MARGINLAB_LESSONS_DIR (a teacher's own course, the tests), else
    the repository's lessons/."""
    configured = os.environ.get("MARGINLAB_LESSONS_DIR")
    return Path(configured).expanduser() if configured else LESSONS_DIR


def compares(lesson: Lesson) -> bool:
    """A lesson that names `losses = [...]` trains them side by side (the parser keeps the
    list in the preset; a single-loss lesson has the lab's default list)."""
    return lesson.preset.losses != LabConfig().losses


def preset_config(lesson: Lesson, current: LabConfig, *, keep_link: bool) -> LabConfig:
    """The lesson's preset, keeping the session's own display settings (speed, presenter,
    device). With `keep_link`, values the opening link set beyond the preset are kept too, so a
    teacher's link with s changed gives the class that s."""
    config = lesson.preset.with_changes(
        speed=current.speed, presenter=current.presenter, device=current.device
    )
    if keep_link:
        linked = {key: getattr(current, key) for key in to_query(current) if key in PRESET_KEYS}
        config = config.with_changes(**linked)
    return config


def load_lesson(lesson: Lesson, current: LabConfig, *, keep_link: bool = False) -> LabConfig:
    """Make `lesson` the session's: its preset in the config (and the URL), a fresh lab run."""
    config = preset_config(lesson, current, keep_link=keep_link)
    set_config(config)
    reset(SLOT)
    st.session_state[LOADED_KEY] = lesson.id
    return config


def arrive(lessons: list[Lesson], config: LabConfig) -> tuple[Lesson, LabConfig]:
    """The lesson the session is on: the one the config (the link) names, else the first.
    Its preset is loaded the first time the session gets to it."""
    by_id = {lesson.id: lesson for lesson in lessons}
    lesson = by_id.get(config.lesson)
    if lesson is None:
        if config.lesson:
            st.info(plain(f"There is no lesson {config.lesson!r}: here is the first one."))
        lesson = lessons[0]
    if st.session_state.get(LOADED_KEY) != lesson.id:
        # The session's first lesson, opened from a link naming it: keep the link's values.
        from_link = LOADED_KEY not in st.session_state and config.lesson == lesson.id
        config = load_lesson(lesson, config, keep_link=from_link)
    return lesson, config


def lesson_picker(lessons: list[Lesson], lesson: Lesson) -> None:
    by_id = {item.id: item for item in lessons}

    def picked() -> None:
        load_lesson(by_id[st.session_state[PICK_KEY]], current_config())

    show_value(PICK_KEY, lesson.id)
    st.radio(
        "lesson",
        options=list(by_id),
        format_func=lambda key: plain(f"{by_id[key].order}. {by_id[key].title}"),
        key=PICK_KEY,
        on_change=picked,
    )


def lesson_controls(config: LabConfig, wanted: list) -> None:
    """The sliders of the losses on the page (s shared, each margin its own)."""
    resolved: dict = {}
    for run_wanted in wanted:
        for name in tunable_params(run_wanted.loss):
            resolved.setdefault(name, getattr(run_wanted, name))
    margin_controls(config, resolved, names=tuple(resolved))
    training_controls(config, wanted[0].to_dict())


def lesson_text(lesson: Lesson) -> None:
    st.markdown(f"#### Look at\n{lesson.sections['Look at']}")
    st.markdown(f"#### Try this\n{lesson.sections['Try this']}")
    st.markdown(f"#### Question\n{lesson.sections['Question']}")
    with st.expander("Answer"):
        st.markdown(lesson.sections["Answer"])
    st.caption(plain(f"Paper: {lesson.paper}"))
    if lesson.preset.dataset in FACE_DATASETS or "Faces page" in lesson.sections["Try this"]:
        faces_link()


def faces_link() -> None:
    if not FACES_PAGE.is_file():
        st.info(
            "The Faces page (open-set verification) is not part of the app yet; until it is, "
            "the claim check below runs the open-set experiment.",
            icon=":material/construction:",
        )
        return
    try:
        st.page_link("views/faces.py", label="Open the Faces page", icon=":material/face:")
    except StreamlitAPIException:  # this page runs on its own, outside the app's navigation
        st.markdown("Open the [Faces page](faces).")


def claim_panel(lesson: Lesson) -> None:
    """The claim, a button that checks it on a fresh run of the preset, and what was measured."""
    st.markdown(f"#### The claim\n> {plain(lesson.claim.text)}")
    results: dict[str, ClaimResult] = st.session_state.setdefault(RESULT_KEY, {})
    # A lesson without pretraining (lesson 7) checks by an experiment of its own: "0 steps"
    # would say the opposite of what happens.
    how = (
        f"trains the lesson's own preset from scratch (seed {lesson.preset.seed}, "
        f"{lesson.pretrain_steps:,} steps)"
        if lesson.pretrain_steps > 0
        else f"runs the experiment the claim describes, from scratch (seed {lesson.preset.seed})"
    )
    st.caption(f"The check {how}, whatever the lab shows now, and measures the claim.")
    if st.button("Check this claim", icon=":material/fact_check:", key="check_claim"):
        bar = st.progress(0.0, text="waiting for the trainer…")
        with st.spinner("Training the lesson's preset…"):
            results[lesson.id] = shared_check(
                lesson, lambda done, text: bar.progress(min(1.0, done), text=text)
            )
        bar.empty()
    result = results.get(lesson.id)
    if result is None:
        return
    if result.skipped:
        st.info(f"Not checked: {result.skipped}", icon=":material/cloud_off:")
    elif result.passed:
        st.success(f"Confirmed. {result.explanation}", icon=":material/check_circle:")
    else:
        st.error(f"Not confirmed. {result.explanation}", icon=":material/cancel:")
    if result.measured:
        table = pd.DataFrame(
            {"measured": list(result.measured), "value": list(result.measured.values())}
        )
        st.dataframe(table, hide_index=True, width="stretch")


# --------------------------------------------------------------------------- the page

config = page_setup("lessons")
lessons, errors = load_lessons(lessons_dir())
for error in errors:
    st.error(plain(f"This lesson file cannot be used: {error}"), icon=":material/error:")
if not lessons:
    st.warning(plain(f"No lessons found in {lessons_dir()}."))
    st.stop()

lesson, config = arrive(lessons, config)
multi = compares(lesson)
wanted = [run_config(config, loss) for loss in config.losses] if multi else [run_config(config)]
with st.sidebar:
    lesson_picker(lessons, lesson)
    st.divider()
    presenter = presenter_toggle()
    setup_controls(config, show_loss=not multi)
    st.divider()
    st.subheader(", ".join(LOSS_NAMES[c.loss] for c in wanted))
    lesson_controls(config, wanted)
presenter_css(presenter)

st.title(plain(f"Lesson {lesson.order}: {lesson.title}"))
text_column, lab_column = st.columns([1, 2], gap="medium")
with text_column:
    lesson_text(lesson)
    st.divider()
    claim_panel(lesson)


def draw(live: LiveTraining) -> None:
    runs = live.runs
    if multi:
        metrics_table(runs)
    else:
        metrics_strip(runs[0], runs[0].latest_snapshot())
    show_figures(lesson.figures, runs, key=SLOT, presenter=presenter, names=runs[0].class_names)
    st.caption(f"Test accuracy and angles are measured on {runs[0].probe_description}.")


def train_to_claim(live: LiveTraining) -> None:
    fast_forward(
        live,
        lesson.pretrain_steps,
        label=f"Train to step {lesson.pretrain_steps} (where the claim is measured)",
    )


with lab_column:
    live_page(
        SLOT,
        wanted,
        new_comparison if multi else (lambda configs: new_run(configs[0])),
        speed=config.speed,
        draw=draw,
        offer_mnist=False,
        below_transport=train_to_claim,
    )
