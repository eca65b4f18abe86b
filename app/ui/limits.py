"""Server-wide limits on what visitors can start: one phase-map sweep and one open-set run at
a time on this server (each is minutes of every core), whoever asks.

A classroom server is shared by thirty students; without a limit, thirty presses of "Compute
the map" start thirty sweeps on two cores and every page stalls. The gates live in
`st.cache_resource`, so every session of this server process sees the same ones; a visitor who
finds a gate taken gets a clear "busy, try again" message instead of a queue. A gate is released
when the work ends, fails, or the session's script run is stopped by a rerun.
Limits per kind: `MARGINLAB_MAX_<KIND>` (e.g. MARGINLAB_MAX_PHASE_MAP=2), default 1.
Downloads are limited where they happen, in the core (safe_files.try_lock around each one), so
a download started by a training worker counts too.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import streamlit as st

KINDS: dict[str, str] = {
    "phase map": "phase-map sweep",
    "open-set run": "open-set face experiment",
}


@st.cache_resource(show_spinner=False)
def _gates() -> dict[str, threading.BoundedSemaphore]:
    """One gate per kind for the whole server process (shared by all sessions)."""
    return {kind: threading.BoundedSemaphore(limit_of(kind)) for kind in KINDS}


def limit_of(kind: str) -> int:
    """How many of `kind` may run at once: $MARGINLAB_MAX_<KIND> (at least 1), default 1."""
    name = "MARGINLAB_MAX_" + kind.upper().replace(" ", "_").replace("-", "_")
    try:
        return max(1, int(os.environ.get(name, "1")))
    except ValueError:
        return 1


def busy_message(kind: str) -> str:
    return (
        f"The server is busy: another visitor's {KINDS[kind]} is running (at most "
        f"{limit_of(kind)} at a time). Try again in a minute."
    )


@contextlib.contextmanager
def limited(kind: str) -> Iterator[bool]:
    """`with limited("phase map") as allowed:` — True with the gate held, else False after
    showing the busy message (the caller skips the work)."""
    gate = _gates()[kind]
    if not gate.acquire(blocking=False):
        st.warning(busy_message(kind), icon=":material/hourglass_top:")
        yield False
        return
    try:
        yield True
    finally:
        gate.release()
