"""Brokers for the publisher tests.

The shared ``mosquitto_broker`` fixture keeps its state in a 0700 temp dir; when the tests run as
root, Mosquitto drops to the ``mosquitto`` user and cannot write its persistence file there, so
a stop()/start() loses every queued message and session. The outage test needs a broker that
really persists, so these fixtures open the directory up first.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import MosquittoBroker


def _broker_dir(tmp: str) -> Path:
    path = Path(tmp)
    os.chmod(path, 0o777)  # noqa: S103 - throwaway test dir; lets the dropped-privilege broker write
    return path


@pytest.fixture
def persistent_broker() -> Iterator[MosquittoBroker]:
    """A private Mosquitto whose sessions and queues survive stop()/start()."""
    with tempfile.TemporaryDirectory(prefix="gw-mosq-outbox-") as tmp:
        broker = MosquittoBroker(_broker_dir(tmp))
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


USERNAME = "edge-01"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def password_broker() -> Iterator[MosquittoBroker]:
    """A private Mosquitto that refuses anonymous clients; one user: USERNAME/PASSWORD."""
    with tempfile.TemporaryDirectory(prefix="gw-mosq-auth-") as tmp:
        workdir = _broker_dir(tmp)
        pwfile = workdir / "passwd"
        subprocess.run(["mosquitto_passwd", "-c", "-b", str(pwfile), USERNAME, PASSWORD], check=True)
        os.chmod(pwfile, 0o644)
        broker = MosquittoBroker(workdir, extra_conf=f"allow_anonymous false\npassword_file {pwfile}")
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()
