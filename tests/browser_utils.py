"""Helpers for real-browser tests: a headless Streamlit server and Debian's chromium.

Typical use (mark the test ``@pytest.mark.browser``)::

    from browser_utils import (
        assert_no_exception, browser_page, open_app, require_chromium, streamlit_server
    )

    def test_page(tmp_path):
        require_chromium()  # first, so a skip does not start a server for nothing
        with streamlit_server("app/main.py") as base_url, browser_page() as page:
            open_app(page, base_url)
            page.get_by_text("Margin Lab").wait_for()
            assert_no_exception(page)

:func:`require_chromium` (``browser_page`` calls it too): without /usr/bin/chromium (or
``$MARGINLAB_CHROMIUM``) the test is skipped with a reason, except in CI (``CI=true``) where
it fails. Playwright's own browsers are never used (never run ``playwright install``).
Other helpers: :func:`record_requests` / :func:`non_local_requests` (prove the page stayed
offline), :func:`free_port`, :func:`server_pid` (the server's process, for /proc probes),
:func:`browser_pages` (several pages in separate contexts of one chromium: one Streamlit
session each).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("MARGINLAB_CHROMIUM", "/usr/bin/chromium")
# A torch app's first render takes seconds on a busy 2-core machine: be generous.
SERVER_START_TIMEOUT_S = 45.0
PAGE_TIMEOUT_MS = 60_000  # screenshots of a live page took over 30 s on a busy 2-core machine
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# The running servers by base URL, so a test can read the server's /proc entries.
_SERVERS: dict[str, subprocess.Popen[bytes]] = {}


def require_chromium() -> str:
    """Path of the chromium binary; skip the test without it, but fail in CI."""
    if Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK):
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright Python package is not installed (requirements-dev.txt)"
        else:
            return CHROMIUM
    else:
        reason = f"{CHROMIUM} not found (apt-get install chromium; never `playwright install`)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(log_path: Path, limit: int = 4000) -> str:
    try:
        return log_path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no server log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and everything it started (its own process group)."""
    if proc.poll() is not None:
        return
    if os.name == "posix":
        # start_new_session made the server a group leader: its pid is the group id.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    else:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def streamlit_server(
    script: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    *,
    args: Sequence[str] = (),
    timeout_s: float = SERVER_START_TIMEOUT_S,
) -> Iterator[str]:
    """Run ``streamlit run <script>`` headless on 127.0.0.1 and yield its base URL.

    ``script`` is relative to the repository root (the working directory of the server).
    ``env`` is added to the current environment; ``args`` are extra Streamlit flags such as
    ``"--server.enableStaticServing=true"``. The server, with any process it started, is
    stopped on exit; if it dies or never gets healthy, the error shows its log.
    """
    script_path = (REPO_ROOT / script).resolve()
    if not script_path.is_file():
        raise FileNotFoundError(script_path)
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script_path),
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        *args,
    ]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with tempfile.TemporaryDirectory(prefix="st-server-") as tmp:
        log_path = Path(tmp) / "server.log"
        with open(log_path, "wb") as log:
            popen_kwargs: dict[str, object] = {}
            if os.name == "posix":
                popen_kwargs["start_new_session"] = True
            else:  # pragma: no cover - Windows
                popen_kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
            proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                **popen_kwargs,  # type: ignore[arg-type]
            )
        base_url = f"http://127.0.0.1:{port}"
        _SERVERS[base_url] = proc
        try:
            _wait_healthy(proc, base_url, log_path, timeout_s)
            yield base_url
        finally:
            _SERVERS.pop(base_url, None)
            _stop(proc)


def server_pid(base_url: str) -> int:
    """Process id of the :func:`streamlit_server` serving ``base_url`` (``python -m streamlit
    run`` serves from that very process, so its /proc/<pid>/status is the server's)."""
    return _SERVERS[base_url].pid


def _wait_healthy(
    proc: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"streamlit exited with {proc.returncode} before it was healthy:\n"
                + _log_tail(log_path)
            )
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as resp:
                if resp.read().decode().strip() == "ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(
        f"streamlit at {base_url} not healthy after {timeout_s:.0f} s:\n" + _log_tail(log_path)
    )


@contextlib.contextmanager
def browser_page(
    *, width: int = 1280, height: int = 900, timeout_ms: int = PAGE_TIMEOUT_MS
) -> Iterator[Page]:
    """A fresh headless chromium profile (deleted afterwards) and one page in it."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile,
        sync_playwright() as p,
    ):
        # launch_persistent_context, not launch(): Debian's chromium with a throwaway
        # profile dir (Playwright rejects --user-data-dir in args).
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height},
        )
        try:
            context.set_default_timeout(timeout_ms)
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()


@contextlib.contextmanager
def browser_pages(
    count: int, *, width: int = 1280, height: int = 900, timeout_ms: int = PAGE_TIMEOUT_MS
) -> Iterator[list[Page]]:
    """``count`` pages, each in its own fresh context of one headless chromium.

    Separate contexts share no cookies or storage, and each page opens its own websocket:
    one Streamlit session per page. Close a page (``page.close()``) to end its session.
    """
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # launch() with fresh (incognito-like) contexts: one browser process for all pages.
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            pages = []
            for _ in range(count):
                context = browser.new_context(viewport={"width": width, "height": height})
                context.set_default_timeout(timeout_ms)
                pages.append(context.new_page())
            yield pages
        finally:
            browser.close()


def open_app(
    page: Page, base_url: str, path: str = "/", *, timeout_ms: int = PAGE_TIMEOUT_MS
) -> None:
    """Navigate to the app and wait until Streamlit has mounted its main block."""
    page.goto(base_url.rstrip("/") + path, timeout=timeout_ms)
    page.locator('[data-testid="stMain"]').wait_for(timeout=timeout_ms)


def record_requests(page: Page) -> list[str]:
    """Every URL the page requests from now on (the list fills as the page runs)."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def non_local_requests(urls: Sequence[str]) -> list[str]:
    """The http(s)/ws(s) URLs among ``urls`` whose host is not this machine."""
    return [
        url
        for url in urls
        if urlsplit(url).scheme in {"http", "https", "ws", "wss"}
        and urlsplit(url).hostname not in LOCAL_HOSTS
    ]


def assert_no_exception(page: Page) -> None:
    """Fail with the message if Streamlit shows an exception block on the page."""
    blocks = page.locator('[data-testid="stException"]')
    if blocks.count():
        raise AssertionError("Streamlit exception on the page:\n" + blocks.first.inner_text())
