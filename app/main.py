"""Streamlit entry point: page navigation, nothing else (logic lives in marginlab and ui)."""

from pathlib import Path

import streamlit as st
import torch

from ui.presenter import page_css, sidebar_state
from ui.state import current_config, route_once

# One torch thread per server process: with several sessions sharing two cores this more than
# doubled total throughput (../shared/reference/STREAMLIT.md), and small matrices get slower,
# not faster, with a second thread waiting on a busy core.
torch.set_num_threads(1)

st.set_page_config(
    page_title="Hypersphere Margin Lab",
    page_icon="◯",
    layout="wide",
    initial_sidebar_state=sidebar_state(current_config().presenter),
)
page_css()

VIEW_DIR = Path(__file__).parent / "views"
CONFIG_LINK = Path(__file__).parent / ".streamlit" / "config.toml"

if not CONFIG_LINK.is_file() or CONFIG_LINK.stat().st_size < 100:
    # Git without symlink support writes the link target as a tiny text file (Windows).
    st.warning(
        "app/.streamlit/config.toml does not lead to streamlit_config.toml (a checkout without "
        "symlinks?): the app runs with Streamlit's default settings. Copy streamlit_config.toml "
        "to app/.streamlit/config.toml to get the classroom theme and offline settings."
    )

# Keyed by LabConfig.page: a shared link such as /?page=compare&losses=... opens that page.
PAGE_LIST = {
    "lab": st.Page(VIEW_DIR / "lab.py", title="Lab", icon=":material/scatter_plot:", default=True),
    "compare": st.Page(VIEW_DIR / "compare.py", title="Compare", icon=":material/view_module:"),
    "formulas": st.Page(VIEW_DIR / "formulas.py", title="Formulas", icon=":material/function:"),
    "phase-map": st.Page(VIEW_DIR / "phase_map.py", title="Phase map", icon=":material/grid_on:"),
    "paper": st.Page(VIEW_DIR / "paper.py", title="The paper", icon=":material/article:"),
    "lessons": st.Page(
        VIEW_DIR / "lessons.py", title="Lessons", icon=":material/school:", url_path="lessons"
    ),
    "faces": st.Page(VIEW_DIR / "faces.py", title="Faces", icon=":material/face:"),
    "about": st.Page(VIEW_DIR / "about.py", title="About", icon=":material/info:"),
}

navigation = st.navigation(list(PAGE_LIST.values()))
route_once(navigation, PAGE_LIST)
navigation.run()
