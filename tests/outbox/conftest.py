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


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_broker() -> Iterator[tuple[MosquittoBroker, Path]]:
    """A private Mosquitto on TLS only, requiring client certificates.

    Yields the broker and a directory with ``ca.pem``, ``client.pem``/``client.key`` (signed by
    the CA) and ``other-ca.pem`` (a CA the broker's certificate does not chain to).
    """
    with tempfile.TemporaryDirectory(prefix="gw-mosq-tls-") as tmp:
        workdir = _broker_dir(tmp)
        pki = workdir / "pki"
        pki.mkdir()
        for ca in ("ca", "other-ca"):
            _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{ca}.key", cwd=pki)
            _openssl("req", "-x509", "-new", "-key", f"{ca}.key", "-subj", f"/CN=gridwarden test {ca}",
                     "-days", "2", "-out", f"{ca}.pem", cwd=pki)  # fmt: skip
        (pki / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        for name in ("server", "client"):
            _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=pki)
            _openssl(
                "req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out", f"{name}.csr", cwd=pki
            )
            _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                     "-days", "2", "-extfile", "san.ext", "-out", f"{name}.pem", cwd=pki)  # fmt: skip
        for f in pki.iterdir():
            os.chmod(f, 0o644)
        broker = MosquittoBroker(
            workdir,
            extra_conf="\n".join(
                [
                    f"cafile {pki / 'ca.pem'}",
                    f"certfile {pki / 'server.pem'}",
                    f"keyfile {pki / 'server.key'}",
                    "require_certificate true",
                ]
            ),
        )
        broker.start()
        try:
            yield broker, pki
        finally:
            broker.stop()
