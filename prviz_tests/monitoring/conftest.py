"""Fixtures of the monitoring tests: a real Dagster instance, kept on tmpfs when there is one.

The instance is `dg.instance_for_test()` (SQLite storage, as `dagster dev` uses); SQLite commits
on a real disk cost milliseconds each, so its folder goes to /dev/shm when available.
"""

import tempfile
from pathlib import Path

import dagster as dg
import pytest

from prviz_tests.monitoring.fakes import build_world


@pytest.fixture
def instance():
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as folder:
        with dg.instance_for_test(temp_dir=folder) as test_instance:
            yield test_instance


@pytest.fixture
def world(tmp_path):
    return build_world(tmp_path)
