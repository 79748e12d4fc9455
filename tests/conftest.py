"""Shared test setup: one FLOP-count cache per test session, never the user's own."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    os.environ["SCALESEARCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
