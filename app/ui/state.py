"""The session's LabConfig, mirrored in the URL so a copied link reproduces the setup.

The session state holds the truth; the URL follows it. The first page a session opens reads
the URL once (a shared link), bad values fall back to defaults, and a note says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from marginlab.lab_state import LabConfig, from_query, to_query
from marginlab.training.config import available_devices
from ui.text import plain

_KEY = "lab_config"
_NOTES_KEY = "lab_config_notes"
_ROUTED_KEY = "lab_page_routed"


def current_config() -> LabConfig:
    """This session's configuration; read from the URL the first time."""
    if _KEY not in st.session_state:
        config = from_query(st.query_params.to_dict())
        st.session_state[_NOTES_KEY] = config.notes
        st.session_state[_KEY] = config.with_changes(notes=())
    return st.session_state[_KEY]


def set_config(config: LabConfig) -> None:
    """Store `config` and mirror it in the address bar."""
    st.session_state[_KEY] = config
    query = to_query(config)
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)


def update_config(**changes: object) -> LabConfig:
    config = current_config().with_changes(**changes)
    set_config(config)
    return config


def show_url_notes() -> None:
    """Say once which URL values were ignored (a shared link with a typo or worse)."""
    current_config()  # the first call reads the URL and keeps its notes
    notes = st.session_state.pop(_NOTES_KEY, ())
    for note in notes:
        st.info(plain(note), icon=":material/link_off:")
    config = current_config()
    if config.device != "auto" and config.device not in available_devices():
        st.info(f"This machine has no {config.device} device: training on the CPU instead.")
        update_config(device="auto")


def page_setup(page: str) -> LabConfig:
    """Every page's first call: URL notes, the page in the config, the URL in sync.

    Streamlit's page navigation drops the query string, so each page writes the session's
    configuration back into the address bar: whatever page a teacher copies the link from,
    it reproduces the setup.
    """
    show_url_notes()
    config = current_config()
    if config.page != page:
        config = config.with_changes(page=page)
    set_config(config)
    return config


def route_once(current: Any, pages: Mapping[str, Any]) -> None:
    """On a session's first run, go to the page its link names (`?page=...`).

    The link's query is read into the session first, because switching pages drops it.
    """
    if st.session_state.get(_ROUTED_KEY):
        return
    st.session_state[_ROUTED_KEY] = True
    if "page" not in st.query_params:
        return  # the address's path already chose the page
    wanted = pages.get(current_config().page)
    if wanted is not None and wanted.url_path != current.url_path:
        st.switch_page(wanted)
