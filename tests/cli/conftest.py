"""Fixtures for the CLI tests (the helpers themselves live in status_cli_helpers.py)."""

import os

import pytest

from status_cli_helpers import SAMPLE_PROJECT, run_status


@pytest.fixture
def sample_root():
    assert os.path.isdir(SAMPLE_PROJECT), "the sample project fixture is expected at %s" % SAMPLE_PROJECT
    return SAMPLE_PROJECT


@pytest.fixture
def status():
    return run_status
