"""Shared fixtures: one local Spark session for the whole test run (the JVM starts once)."""

import os

import pytest


@pytest.fixture(scope="session")
def spark():
    from prviz.spark.session import local_session

    session = local_session(app_name="prviz-tests", master="local[2]")
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _no_prviz_env(monkeypatch):
    """Tests never see the developer's PRVIZ_* settings."""
    for name in list(os.environ):
        if name.startswith("PRVIZ_"):
            monkeypatch.delenv(name, raising=False)
