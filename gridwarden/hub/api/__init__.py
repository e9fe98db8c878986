"""The hub's REST API: one router per resource, shared dependencies in :mod:`.deps`."""
