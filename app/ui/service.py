"""The server's one training service (st.cache_resource: shared by every session).

Sharing it is safe, unlike a model in a global cache (STREAMLIT.md): the service holds each
session's trainer apart, in its worker processes, and a session only ever holds the handle of
its own trainer (in its session_state). The workers exit with the server, whatever kills it.

Sessions on an identical setup follow one shared trainer until one of them changes something
(training.service.sharing; $MARGINLAB_SHARED_RUNS=0 gives every session its own run).
"""

from __future__ import annotations

import streamlit as st

from marginlab.training.service.sharing import SharingService

_started: list[SharingService] = []  # the service once a page has started it


@st.cache_resource(show_spinner=False)
def training_service() -> SharingService:
    """Started on the first page that trains; $MARGINLAB_WORKERS sets the worker count."""
    service = SharingService()
    _started[:] = [service]
    return service


def server_load_line() -> str:
    """The server's load in one line, without starting the service for it."""
    if not _started:
        return "Server: no training has started since the server started."
    return _started[0].load().line()
