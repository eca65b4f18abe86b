"""Figures built once for every session that draws the same thing.

The sessions of a class that follow one shared run (training/service/sharing.py) draw the very
same snapshots with the very same settings, and each of their live ticks built the same
figures and their JSON again: six tabs on one lesson spent six times the server's time on one
picture, on the cores the training and the browsers need. Here a figure's JSON is kept under a
key that says what it shows, and a session whose key is already there (or being built by
another session right now) takes that text instead of building its own.

    ready = prepared(("lab_view", Same(snap), frozen(params), presenter), lambda: figure)
    live_plotly(ready, key="lab_view")

Keys hold the snapshots by identity (`Same`): a snapshot is never changed once taken, so the
same object means the same picture, and the key keeps it alive while the entry lives, so its
id cannot be reused. Everything else in a key is a plain value. A few hundred entries at most
are kept (about a tick's worth of a full class), the oldest used first out.

No Streamlit here: the text is what `live_plotly` would have sent for the figure.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from marginlab.figures.figure_json import figure_json
from marginlab.text_fit import split_caption

MAX_ENTRIES = 256
MAX_BYTES = 48 * 2**20  # of JSON text; a Lab circle is about 100 kB
WAIT_FOR_OTHER_S = 10.0  # a build another session started is waited for this long at most


@dataclass(frozen=True)
class PreparedFigure:
    """A figure as live_plotly sends it: its JSON (subtitle taken out) and that subtitle."""

    json: str
    caption: str | None


class Same:
    """A key part equal only to the very same object (snapshots, label arrays)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and other.obj is self.obj


def history_key(history: Sequence[Any]) -> tuple:
    """A run's history as a key part: its newest snapshot and its length (a history is only
    ever appended to and trimmed at its start, so the two say what it holds)."""
    return (Same(history[-1]) if history else None, len(history))


def frozen(params: Mapping[str, Any]) -> str:
    """Hyper-parameters as a key part: equal for equal values, whatever their order."""
    return json.dumps(params, sort_keys=True, default=repr)


def as_figure(fig: go.Figure | Mapping[str, Any]) -> go.Figure:
    """A plain dict goes through go.Figure: plotly.io.to_json would write its numpy arrays as
    (3x bigger) lists, and the Figure also applies the default template."""
    return fig if isinstance(fig, go.Figure) else go.Figure(dict(fig))


def prepare(fig: go.Figure | Mapping[str, Any]) -> PreparedFigure:
    """The JSON and caption of a figure (its subtitle is taken out into the caption)."""
    fig = as_figure(fig)
    caption = split_caption(fig)
    return PreparedFigure(figure_json(fig), caption)


class FigureCache:
    """Prepared figures by key, shared by the server's sessions; thread-safe."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._bytes = 0
        self._entries: OrderedDict[Hashable, PreparedFigure | None] = OrderedDict()
        self._building: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self.built = self.reused = 0

    def get(
        self, key: Hashable, build: Callable[[], go.Figure | Mapping[str, Any] | None]
    ) -> PreparedFigure | None:
        """The prepared figure under `key`, built by `build` (None: no such figure) only if
        no session has built it yet; a build in progress elsewhere is waited for."""
        while True:
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    self.reused += 1
                    return self._entries[key]
                other = self._building.get(key)
                if other is None:
                    mine = self._building[key] = threading.Event()
                    break
            if not other.wait(WAIT_FOR_OTHER_S):
                # The other build is slow: build our own rather than wait on.
                return _prepared(build())
        try:
            ready = _prepared(build())
        except BaseException:
            with self._lock:
                del self._building[key]
            mine.set()
            raise
        with self._lock:
            self._entries[key] = ready
            self._bytes += _size(ready)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._bytes -= _size(self._entries.popitem(last=False)[1])
            del self._building[key]
            self.built += 1
        mine.set()
        return ready

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)


def _size(ready: PreparedFigure | None) -> int:
    return 0 if ready is None else len(ready.json)


def _prepared(fig: go.Figure | Mapping[str, Any] | None) -> PreparedFigure | None:
    return None if fig is None else prepare(fig)


SHARED_FIGURES = FigureCache()


def prepared(
    key: Hashable, build: Callable[[], go.Figure | Mapping[str, Any] | None]
) -> PreparedFigure | None:
    """The server-wide cache's figure under `key` (see FigureCache.get)."""
    return SHARED_FIGURES.get(key, build)
