"""The server's one training service (st.cache_resource: shared by every session).

Sharing it is safe, unlike a model in a global cache (STREAMLIT.md): the service holds each
session's trainer apart, in its worker processes, and a session only ever holds the handle of
its own trainer (in its session_state). The workers exit with the server, whatever kills it.

Shared runs (training.service.sharing: sessions on an identical setup follow one trainer) are
opt-in here, $MARGINLAB_SHARED_RUNS=1: in the Lab a slider moved while playing forks in the
background, and a fork that lands after the user's Pause replaced the paused view by the fork's
later step (seen in chromium: Pause showed step 189, then 336), which breaks "the step shown
at Pause stays". Without sharing every session trains its own run.
"""

from __future__ import annotations

import os

import streamlit as st

from marginlab.training.service.sharing import ENV_SHARED_RUNS, SharingService


@st.cache_resource(show_spinner=False)
def training_service() -> SharingService:
    """Started on the first page that trains; $MARGINLAB_WORKERS sets the worker count."""
    share = os.environ.get(ENV_SHARED_RUNS, "0").strip().lower() in ("1", "true", "yes")
    return SharingService(share=share)
