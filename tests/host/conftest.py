"""Fixtures for host tests."""
import pytest

from simboards import start_sim


@pytest.fixture
def sim3(tmp_path):
    """Three virtual boards (addresses 1..3) on one bus, stopped after the test."""
    sim = start_sim(tmp_path, "--stages", "3")
    yield sim
    sim.stop()
