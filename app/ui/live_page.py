"""The one live-page skeleton: Lab, Compare, Lessons and Faces differ only in what they draw.

    live = live_page(SLOT, wanted, recipe, speed=config.speed, draw=draw_panel)

It gets (or makes) the session's trainer in the training service, shows a data-set notice,
the Play/Pause/Step/Reset buttons and any error, and then a fragment that redraws `draw(live)`
from the latest snapshots: every TICK_SECONDS or more while playing (ui.live.run_every), never
waiting on a training step (the workers train in between). When the trainer stops by itself
(the end of a fast-forward, a NaN-guard trip, an error, a crashed worker), the whole page
reruns so the buttons say so.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from marginlab.training.config import RunConfig
from ui.live import (
    LiveTraining,
    Recipe,
    keepalive,
    live_training,
    redraw_interval,
    run_every,
    timed_draw,
    transport,
)
from ui.state import update_config
from ui.text import plain

LIVE_PANEL_KEY = "live-panel"  # its CSS class, st-key-live-panel, is in ui.presenter.PAGE_CSS


def live_page(
    slot: str,
    wanted: list[RunConfig],
    recipe: Recipe,
    *,
    speed: int,
    draw: Callable[[LiveTraining], None],
    setup: tuple = (),
    offer_mnist: bool = True,
    below_transport: Callable[[LiveTraining], None] | None = None,
) -> LiveTraining:
    """The session's live trainer for `wanted`, its buttons and its live panel (`draw`).

    Without the data set it says so (offering the shipped MNIST subset) and stops the page.
    `below_transport` draws extra controls under the buttons (Lessons: "train to step N")."""
    live = live_training(slot, wanted, recipe, setup=setup)
    if live is None:
        if offer_mnist and st.button("Use the shipped MNIST subset instead", type="primary"):
            update_config(dataset="mnist-toy")
            st.rerun()
        st.stop()
    notice = live.runs[0].notice
    if notice:
        st.info(plain(notice), icon=":material/info:")  # the data set's own words
    transport(live, slot, speed=speed)
    # Both slots are always there: a message that appears (a fork waits a moment in the queue
    # for its place) would otherwise shift every element below it, and Streamlit remounts
    # shifted plots (a blank plot, a lost 3-D camera) on a slider move while playing.
    sharing_slot, error_slot = st.empty(), st.empty()
    sharing = getattr(live.handle, "notice", "")  # a shared run, or a queue for a place
    if sharing:
        sharing_slot.caption(sharing)
    if live.error:
        error_slot.error(live.error, icon=":material/error:")
    if below_transport is not None:
        below_transport(live)
    keepalive(live)
    playing_when_drawn = live.playing

    @st.fragment(run_every=run_every(live))
    def live_panel() -> None:
        live.handle.touch()
        live.handle.pace(redraw_interval())  # no more snapshots than this page draws
        if playing_when_drawn and not live.playing:  # it stopped by itself: redraw the buttons
            st.rerun(scope="app")
        with st.container(key=LIVE_PANEL_KEY):  # never faded (ui.presenter.PAGE_CSS)
            timed_draw(lambda: draw(live))

    live_panel()
    return live
