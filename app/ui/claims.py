"""Lesson claim checks, computed once per lesson text for the whole server.

The cache and its lock are server-wide (st.cache_resource) and live here in ui/, not in a page:
a class of thirty pressing "Check this claim" at once would otherwise start thirty trainings on
the same cores; with the lock they queue, and all but the first find the answer ready (a check
is seeded and deterministic for a given lesson text).
"""

from __future__ import annotations

import threading

import streamlit as st

from marginlab.lessons.checks import ClaimResult, Progress, check_claim
from marginlab.lessons.parser import Lesson


@st.cache_resource
def _shared_results() -> tuple[dict[tuple, ClaimResult], threading.Lock]:
    return {}, threading.Lock()


def shared_check(lesson: Lesson, progress: Progress) -> ClaimResult:
    """check_claim, computed once per lesson content for the whole server."""
    results, lock = _shared_results()
    claim = (lesson.claim.text, lesson.claim.check, repr(sorted(lesson.claim.params.items())))
    key = (lesson.id, claim, lesson.preset, lesson.pretrain_steps)
    with lock:
        if key in results:
            return results[key]
        try:
            result = check_claim(lesson, progress)
        except Exception as error:  # a broken check is reported, never a traceback
            return ClaimResult(False, explanation=f"The check failed: {error}")
        if not result.skipped:  # a missing download may be there next time
            results[key] = result
        return result
