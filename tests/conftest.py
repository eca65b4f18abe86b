"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
# Real reference datasets beside the project (see ../shared/data/README.md); CI always has
# them, a fresh clone does not, so tests that need them skip with a reason instead of failing.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# Page tests open many sessions in one process (AppTest) or one server (the browser tests) and
# never close them: a classroom's limit of private trainers per worker would make the later
# ones wait in line for minutes (the service reaps a session after its two-minute TTL). The
# limit and the queue have their own tests (test_sharing.py), with explicit limits.
os.environ.setdefault("MARGINLAB_PRIVATE_PER_WORKER", "64")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `cuda` skip with a reason where no CUDA device is (`-m cuda` selects them)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none here)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """../shared/data relative to the repository root, or skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (only CI has it)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module (as the app runs): on a shared 2-core machine, more
    threads mostly wait on each other. Use with pytest.mark.usefixtures("one_thread")."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TOY_PROBE = 300  # probe images per snapshot in the engine tests: small, so snapshots are fast


@pytest.fixture(scope="module")
def data():
    """mnist-toy on the CPU with a TOY_PROBE-image probe, shared by a module's engine tests."""
    from marginlab.data.batches import to_device
    from marginlab.data.datasets import load_dataset

    return to_device(load_dataset("mnist-toy"), torch.device("cpu"), probe_size=TOY_PROBE)
