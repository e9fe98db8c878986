"""Fixtures shared by every test area. Area-specific fixtures live in each folder's conftest."""

pytest_plugins = ["tests.support.mosquitto"]
