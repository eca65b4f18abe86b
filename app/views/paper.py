"""Reproduce the paper: one button per figure or table of the ArcFace paper the app can make."""

import pandas as pd
import streamlit as st

from marginlab.experiments.paper import ITEMS
from ui.live_plot import live_plotly
from ui.state import page_setup

config = page_setup("paper")
st.title("Reproduce the paper")
st.caption(
    "Deng, Guo, Xue and Zafeiriou, *ArcFace: Additive Angular Margin Loss for Deep Face "
    "Recognition*, CVPR 2019. Each item says what the paper showed, what this app shows and "
    "where the two differ; items that train use real short runs of the lab's engine (seed "
    f"{config.seed}, the sidebar's), and their results stay until you make them again."
)


def step_options(default: int) -> list[int]:
    return sorted({20, 100, default // 2, default, 2 * default})


for key, item in ITEMS.items():
    with st.container(border=True):
        st.subheader(item.title)
        paper, app, differs = st.columns(3)
        paper.markdown(f"**In the paper.** {item.paper}")
        app.markdown(f"**Here.** {item.app}")
        differs.markdown(f"**Where they differ.** {item.differs}")
        steps = 0
        if item.default_steps:
            steps = st.select_slider(
                "training steps",
                options=step_options(item.default_steps),
                value=item.default_steps,
                key=f"paper_steps_{key}",
            )
        label = "Make " + item.title.split(":")[0]
        if st.button(label, key=f"paper_make_{key}", icon=":material/play_arrow:"):
            bar = st.progress(0.0, text="starting")
            result = item.make(
                steps=steps,
                seed=config.seed,
                progress=lambda f, text, bar=bar: bar.progress(min(max(f, 0.0), 1.0), text=text),
            )
            bar.empty()
            st.session_state[f"paper_result_{key}"] = ((steps, config.seed), result)
        saved = st.session_state.get(f"paper_result_{key}")
        if saved is None:
            continue
        made_with, result = saved
        if made_with != (steps, config.seed):
            st.info("Made with other settings: press the button again to see these.")
        if result.skipped:
            st.warning(result.skipped, icon=":material/cloud_off:")
            continue
        # Two figures (softmax beside ArcFace, or the distribution beside its curve) side by side.
        places = (
            st.columns(2) if len(result.figures) == 2 else [st.container()] * len(result.figures)
        )
        for k, (place, figure) in enumerate(zip(places, result.figures, strict=True)):
            with place:
                live_plotly(figure, key=f"paper_{key}_figure_{k}")
        if result.table:
            st.dataframe(pd.DataFrame(list(result.table)), hide_index=True, width="stretch")
        for note in result.notes:
            st.caption(note)
