"""Deployment defaults for a classroom server (issue 16): bound to this machine, no outbound
calls and no warnings at start, no tracebacks for visitors, server-wide limits on heavy work."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from browser_utils import (
    REPO_ROOT,
    browser_page,
    free_port,
    open_app,
    require_chromium,
    streamlit_server,
)
from marginlab.data import face_sets
from marginlab.data.datasets import DatasetUnavailable, load_dataset
from marginlab.safe_files import Busy, try_lock

CONFIG = tomllib.loads((REPO_ROOT / "streamlit_config.toml").read_text())
APP = REPO_ROOT / "app"


def test_the_config_binds_to_this_machine_and_hides_error_details():
    assert CONFIG["server"]["address"] == "127.0.0.1"
    assert CONFIG["client"]["showErrorDetails"] == "none"
    assert CONFIG["browser"]["gatherUsageStats"] is False
    assert (APP / ".streamlit" / "config.toml").resolve() == REPO_ROOT / "streamlit_config.toml"


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp* writes them) of sockets listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.read() == b"ok"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net")
def test_a_plain_start_listens_on_localhost_only_and_prints_no_warning(tmp_path):
    """`streamlit run app/main.py` as the README says (only a port added): the app's own config
    decides the address; the log has no warning and no external-IP lookup."""
    port = free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "PYTHONPATH": str(APP), "HOME": str(tmp_path)}
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(APP / "main.py"),
             f"--server.port={port}"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _healthy(port):
            time.sleep(0.3)
        addresses = _listening_addresses(port)
    finally:
        server.terminate()
        server.wait(timeout=20)
    text = log.read_text()
    # 127.0.0.1 in /proc's little-endian hex; any other address would be reachable from outside.
    assert addresses == {"0100007F"}, (addresses, text)
    assert "WARNING" not in text.upper() and "static" not in text.lower(), text
    assert "external IP" not in text and "Network URL" not in text, text


@pytest.mark.browser
def test_a_failing_page_shows_no_traceback_and_the_log_keeps_it():
    require_chromium()
    flags = [
        f"--{section}.{key}={value}".replace("True", "true").replace("False", "false")
        for section, values in CONFIG.items()
        if section in ("server", "client", "runner")
        for key, value in values.items()
    ]
    with (
        streamlit_server("tests/apps/raise_demo.py", args=flags) as base_url,
        browser_page() as page,
    ):
        open_app(page, base_url)
        page.get_by_text("before the failure").wait_for()
        page.locator('[data-testid="stException"], [data-testid="stAlert"]').first.wait_for()
        shown = page.locator('[data-testid="stMain"]').inner_text()
        log = _server_log(base_url)
    assert "secret detail" not in shown and "Traceback" not in shown, shown
    assert "ZeroDivisionError" not in shown and str(REPO_ROOT) not in shown, shown
    assert "ZeroDivisionError: secret detail of the failure" in log


def _server_log(base_url: str) -> str:
    """The log of a browser_utils server (its stdout and stderr go to one file)."""
    import browser_utils

    pid = browser_utils.server_pid(base_url)
    return Path(f"/proc/{pid}/fd/1").read_text(errors="replace")


# ----- server-wide limits ------------------------------------------------------------------
def test_a_second_phase_map_sweep_is_told_the_server_is_busy(tmp_path, monkeypatch):
    from ui.limits import _gates

    monkeypatch.setenv("MARGINLAB_CACHE", str(tmp_path))  # no map cached from other runs
    gate = _gates()["phase map"]
    assert gate.acquire(blocking=False)  # another visitor's sweep is running
    try:
        at = AppTest.from_file(str(APP / "views" / "phase_map.py"), default_timeout=120).run()
        at.button[0].click().run()
        assert not at.exception, at.exception
        warnings = [w.body for w in at.warning]
        assert any("busy" in w and "Try again" in w for w in warnings), warnings
        assert not at.get("plotly_chart") and not at.get("bidi_component")  # nothing drawn
    finally:
        gate.release()
    assert gate.acquire(blocking=False)  # the page released nothing it did not hold
    gate.release()


def test_one_download_per_data_set_at_a_time(tmp_path):
    """While one process holds the MNIST download lock, another session falls back to the
    shipped subset at once and says why (no second download, no wait)."""
    holder = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with try_lock(tmp_path / "mnist" / ".download.lock", "a download of MNIST"):
            holder.set()
            release.wait(60)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        holder.wait(10)
        dataset = load_dataset("mnist", cache_dir=tmp_path)
        assert dataset.name == "mnist-toy" and "already running" in dataset.notice
        with (
            pytest.raises(Busy),
            try_lock(tmp_path / "mnist" / ".download.lock", "a download of MNIST"),
        ):
            pass
        with pytest.raises(DatasetUnavailable, match="already running"):
            home = tmp_path / "faces" / "scikit_learn_data"
            with try_lock(home / ".olivetti-download.lock", "the first download"):
                face_sets._fetch_faces("olivetti", tmp_path / "faces", True, _never_called)
    finally:
        release.set()
        thread.join()


def _never_called(**_: object) -> None:
    raise AssertionError("the fetcher must not run while another download holds the lock")
