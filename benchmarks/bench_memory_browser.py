"""Memory after sessions end, on the real thing: `streamlit run app/main.py` and chromium tabs.

Run: python benchmarks/bench_memory_browser.py [--rounds 2] [--tabs 6] [--steps 50]

The server runs with --server.disconnectedSessionTTL=2 (Streamlit drops a closed tab's state
2 s after its websocket closes; 120 s by default) and MARGINLAB_SESSION_TTL=40 (the training
service ends a trainer nobody polled for 40 s, just above a paused page's 30 s keep-alive; 120 s
by default), so a round ends in a minute.
- Warm baseline: one tab opens the Lab, plays a few steps, pauses, closes.
- Each round: `--tabs` tabs, each in its own browser context (one Streamlit session each),
  open the Lab on their own seed (`?seed=N`: their own trainer), press Play, wait for
  `--steps` steps; then all tabs close (while playing: their ticks stop with them).
- After each round, once Streamlit counts no session and the service no trainer (both TTLs
  passed): VmRSS of the server process and of its training workers (its child processes).

Prints MB per process and each round's difference to the warm baseline (bench_memory.py does
the same against the SharingService alone, which tests/test_memory_return.py asserts on).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "app"), str(ROOT / "tests")]

from browser_utils import browser_pages, server_pid, streamlit_server  # noqa: E402
from marginlab.training.service.capacity import resident_bytes  # noqa: E402
from test_app_live_browser import (  # noqa: E402
    open_lab,
    press,
    server_metrics,
    step_of,
    wait_until,
)

SESSION_TTL_S = 40.0  # above the 30 s keep-alive of a paused page (ui/live.py)
SETTLE_S = SESSION_TTL_S + 10.0  # the service's reaper looks every ttl / 4, the queue every 2 s
MB = 1e6


def workers_of(pid: int) -> list[int]:
    """The server's child processes (the training workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in children]


def measure(base_url: str) -> dict[str, float]:
    deadline = time.monotonic() + 60
    while server_metrics(base_url)["active_sessions"] > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the browser sessions did not end")
        time.sleep(0.5)
    time.sleep(SETTLE_S)  # Streamlit's state dropped, every trainer reaped
    pid = server_pid(base_url)
    server, workers = resident_bytes([pid]), resident_bytes(workers_of(pid))
    return {
        "server_mb": server / MB,
        "workers_mb": workers / MB,
        "total_mb": (server + workers) / MB,
    }


def one_round(base_url: str, tabs: int, steps: int, first_seed: int) -> None:
    with browser_pages(tabs, height=1400) as pages:
        for index, page in enumerate(pages):
            open_lab(page, base_url, f"?seed={first_seed + index}")
        for page in pages:
            press(page, "Play", then="Pause")
        for page in pages:
            wait_until(page, lambda p=page: step_of(p) >= steps, f"{steps} steps", 900)
        for page in pages:  # closed while playing: the tick stops with the tab
            page.close()


def warm_up(base_url: str) -> None:
    with browser_pages(1, height=1400) as (page,):
        open_lab(page, base_url, "?seed=999")
        press(page, "Play", then="Pause")
        wait_until(page, lambda: step_of(page) >= 5, "a few steps", 300)
        press(page, "Pause", then="Play")
        page.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tabs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args(argv)
    env = {"MARGINLAB_SESSION_TTL": str(SESSION_TTL_S), "MARGINLAB_PRIVATE_PER_WORKER": "64"}
    flags = ["--server.disconnectedSessionTTL=2"]
    with streamlit_server("app/main.py", env=env, args=flags) as base_url:
        warm_up(base_url)
        rows = [("warm baseline", measure(base_url))]
        print(rows[-1], flush=True)
        for index in range(args.rounds):
            one_round(base_url, args.tabs, args.steps, first_seed=index * args.tabs)
            rows.append((f"after round {index + 1}", measure(base_url)))
            print(rows[-1], flush=True)
    warm = rows[0][1]["total_mb"]
    print(f"{'':16} {'server MB':>10} {'workers MB':>11} {'total MB':>9} {'vs warm':>8}")
    for name, row in rows:
        print(
            f"{name:16} {row['server_mb']:10.1f} {row['workers_mb']:11.1f} "
            f"{row['total_mb']:9.1f} {row['total_mb'] - warm:+8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
