"""The caption leaves the figure as text (the app shows it under the plot; exports under the
page's figure), whatever shape the figure's title has; exported pages carry the fitting script."""

from __future__ import annotations

import json

from marginlab.figures import figure_html, target_probability_figure
from marginlab.figures.style import TITLE_PAD_PX
from marginlab.text_fit import caption_html, fit_text_js, split_caption


def test_the_caption_is_taken_out_and_the_title_kept():
    fig = target_probability_figure("arcface", 16.0, m2=0.2)
    title = fig.layout.title.text
    caption = split_caption(fig)
    assert caption and "C−1 = 9" in caption
    assert fig.layout.title.subtitle.text is None and fig.layout.title.text == title
    # the rest of the title's layout is untouched: hung from the figure's top edge
    assert fig.layout.title.yref == "container" and fig.layout.title.pad.t == TITLE_PAD_PX
    assert split_caption(fig) is None  # taken once


def test_a_plain_string_title_has_no_caption_and_becomes_a_title_object():
    fig = target_probability_figure("arcface", 16.0, m2=0.2)
    fig.update_layout(title="ArcFace")  # unvalidated figures keep the string as is
    assert split_caption(fig) is None
    # plotly.js 3 draws no string titles: the browser gets {"text": ...}.
    assert json.loads(fig.to_json())["layout"]["title"] == {"text": "ArcFace"}


def test_an_exported_page_has_its_caption_under_the_plot_and_the_fit_script():
    fig = target_probability_figure("normface", 16.0)
    page = figure_html(fig)
    assert page.index('class="plotly-graph-div"') < page.index('class="figure-caption"')
    assert "C−1 = 9" in page.split('class="figure-caption"')[1]
    assert "function fitFigure" in page and fit_text_js() in page
    assert fig.layout.title.subtitle.text  # the caller's figure keeps its caption
    assert caption_html("a < b").endswith("a &lt; b</p>")
