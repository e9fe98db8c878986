"""Gridwarden: edge video analytics for city streets (illegal parking, occupied public space)."""

__version__ = "0.1.0"
