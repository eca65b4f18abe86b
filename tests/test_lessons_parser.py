"""The lesson parser: good files become presets, bad files name their file and line."""

import pytest

from marginlab.lessons.parser import LessonError, load_lessons, parse_lesson

GOOD = """+++
title = "The additive angular margin"
paper = "Deng et al., ArcFace, CVPR 2019"
order = 3
loss = "arcface"
dim = 2
s = 16.0
m2 = 0.3
seed = 1
pretrain_steps = 200
figures = ["view", "target_logit"]
[claim]
text = "The band is m wide."
check = "band_width_equals_margin"
params = { tolerance = 0.01 }
+++
## Look at
The grey bands.
## Try this
1. Drag m.
## Question
Why?
## Answer
Because.
"""


def test_a_good_lesson_becomes_a_preset(tmp_path):
    lesson = parse_lesson(GOOD, tmp_path / "03-arcface.md")
    assert lesson.id == "03-arcface"
    assert lesson.order == 3
    assert lesson.preset.loss == "arcface"
    assert lesson.preset.m2 == 0.3
    assert lesson.preset.seed == 1
    assert lesson.preset.page == "lessons"
    assert lesson.preset.lesson == "03-arcface"
    assert lesson.pretrain_steps == 200
    assert lesson.claim.check == "band_width_equals_margin"
    assert lesson.claim.params == {"tolerance": 0.01}
    assert lesson.sections["Try this"] == "1. Drag m."
    assert lesson.query == {"page": "lessons", "lesson": "03-arcface"}


def test_losses_list_sets_the_first_loss(tmp_path):
    text = GOOD.replace('loss = "arcface"', 'losses = ["cosface", "arcface"]')
    lesson = parse_lesson(text, tmp_path / "x.md")
    assert lesson.preset.losses == ("cosface", "arcface")
    assert lesson.preset.loss == "cosface"


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("dim = 2", "dim = 7"), 6, "dim"),
        (("m2 = 0.3", 'm2 = "wide"'), 8, "m2"),
        (("seed = 1", "seed = = 1"), 9, "TOML"),
        (("order = 3", "colour = 3"), 4, "unknown header key"),
        (('figures = ["view", "target_logit"]', 'figures = ["hologram"]'), 11, "figures"),
        (("pretrain_steps = 200", "pretrain_steps = -5"), 10, "pretrain_steps"),
    ],
)
def test_bad_headers_name_file_and_line(tmp_path, change, line, words):
    with pytest.raises(LessonError) as error:
        parse_lesson(GOOD.replace(*change), tmp_path / "bad.md")
    message = str(error.value)
    assert message.startswith(f"bad.md, line {line}:"), message
    assert words in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("no header at all", "starts with a '+++'"),
        ("+++\ntitle = 'x'\n", "never closed"),
        (GOOD.replace("## Answer\nBecause.\n", ""), "## Answer"),
        (GOOD.replace('paper = "Deng et al., ArcFace, CVPR 2019"\n', ""), "'paper'"),
    ],
)
def test_bad_structure_is_reported(tmp_path, text, words):
    with pytest.raises(LessonError, match="bad.md") as error:
        parse_lesson(text, tmp_path / "bad.md")
    assert words in str(error.value)


def test_one_bad_file_does_not_hide_the_others(tmp_path):
    (tmp_path / "01-good.md").write_text(GOOD.replace("order = 3", "order = 1"))
    (tmp_path / "02-bad.md").write_text(GOOD.replace("dim = 2", "dim = 0"))
    (tmp_path / "03-binary.md").write_bytes(b"\xff\xfe\x00 not text")
    lessons, errors = load_lessons(tmp_path)
    assert [lesson.id for lesson in lessons] == ["01-good"]
    assert len(errors) == 2
    assert any(e.startswith("02-bad.md, line 6") for e in errors)
    assert any(e.startswith("03-binary.md") for e in errors)


# Malformed fields that once escaped the parser's handled path (issue 16: `order = "abc"` took
# the whole Lessons page down). Each must name its file and line, and leave the others loaded.
MALFORMED = [
    (("order = 3", 'order = "abc"'), 4, "order"),
    (("order = 3", "order = 2.5"), 4, "order"),
    (("order = 3", "order = true"), 4, "order"),
    (("order = 3", "order = 99999999999999999"), 4, "order"),
    (("pretrain_steps = 200", "pretrain_steps = true"), 10, "pretrain_steps"),
    (('title = "The additive angular margin"', "title = [1, 2]"), 2, "title"),
    (('title = "The additive angular margin"', 'title = ""'), 2, "title"),
    (('paper = "Deng et al., ArcFace, CVPR 2019"', "paper = 3"), 3, "paper"),
    (('text = "The band is m wide."', "text = { a = 1 }"), 13, "text"),
    (('check = "band_width_equals_margin"', "check = 5"), 14, "check"),
    (("params = { tolerance = 0.01 }", 'params = "tight"'), 15, "params"),
    (('figures = ["view", "target_logit"]', "figures = [[1]]"), 11, "figures"),
    (("s = 16.0", "s = { x = 1 }"), 7, "s"),
    (('loss = "arcface"', "losses = [1, [2]]"), 5, "losses"),
]


@pytest.mark.parametrize(("change", "line", "words"), MALFORMED)
def test_malformed_fields_name_file_and_line(tmp_path, change, line, words):
    assert change[0] in GOOD
    with pytest.raises(LessonError) as error:
        parse_lesson(GOOD.replace(*change), tmp_path / "bad.md")
    message = str(error.value)
    assert message.startswith(f"bad.md, line {line}:"), message
    assert words in message


def test_malformed_fields_leave_the_other_lessons_loaded(tmp_path):
    (tmp_path / "00-good.md").write_text(GOOD.replace("order = 3", "order = 0"))
    for index, (change, _, _) in enumerate(MALFORMED, 1):
        (tmp_path / f"{index:02d}-bad.md").write_text(GOOD.replace(*change))
    lessons, errors = load_lessons(tmp_path)
    assert [lesson.id for lesson in lessons] == ["00-good"]
    assert len(errors) == len(MALFORMED)
    for index, (_, line, _) in enumerate(MALFORMED, 1):
        assert f"{index:02d}-bad.md, line {line}:" in " | ".join(errors)
