"""The server's one training service (st.cache_resource: shared by every session).

Sharing it is safe, unlike a model in a global cache (STREAMLIT.md): the service holds each
session's trainer apart, in its worker processes, and a session only ever holds the handle of
its own trainer (in its session_state). Sessions on an identical setup follow one shared run
until one of them changes something (training.service.sharing; $MARGINLAB_SHARED_RUNS=0
turns that off). The workers exit with the server, whatever kills it.
"""

from __future__ import annotations

import streamlit as st

from marginlab.training.service.sharing import SharingService


@st.cache_resource(show_spinner=False)
def training_service() -> SharingService:
    """Started on the first page that trains; $MARGINLAB_WORKERS sets the worker count."""
    return SharingService()
