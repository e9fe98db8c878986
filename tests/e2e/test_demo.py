"""`gridwarden demo`: broker, hub and edge start; the synthetic scene's stall becomes a case
(checked over the API) within a minute; SIGTERM stops everything cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.paths import REPO_ROOT


@pytest.mark.slow
def test_demo_raises_a_case_and_stops_on_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "demo.out"
    token_file = tmp_path / "token"
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gridwarden.cli", "demo", "--data-dir", str(tmp_path / "demo"), "--port", "0",
             "--token-file", str(token_file)],
            stdout=sink, stderr=subprocess.STDOUT, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )  # fmt: skip
    try:
        started = time.monotonic()
        base = None
        while time.monotonic() - started < 60 and base is None:
            assert proc.poll() is None, out.read_text()
            match = re.search(r"API and docs:\s+(http://\S+)/docs", out.read_text())
            base = match.group(1) if match else None
            time.sleep(0.2)
        assert base, out.read_text()
        login = re.search(r"Console login:\s+user 'demo', password (\S+)", out.read_text())
        assert login, out.read_text()
        headers = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
        case = None
        # the bound: a case within a minute of starting (scene rendering included)
        while time.monotonic() - started < 60 and case is None:
            items = httpx.get(f"{base}/api/v1/cases", headers=headers, timeout=5).json()["items"]
            case = items[0] if items else None
            time.sleep(1)
        assert case is not None, (tmp_path / "demo" / "logs" / "edge.log").read_text()[-3000:]
        assert case["rule"] == "static_object" and case["camera"] == "street-01"
        # the review console is served, and the printed password logs in
        page = httpx.get(f"{base}/console/", timeout=5)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        session = httpx.post(
            f"{base}/api/v1/console/login", json={"username": "demo", "password": login.group(1)}, timeout=10
        )
        assert session.status_code == 200, session.text
        # the incident came with its two snapshots, and the hub serves them
        detail = httpx.get(f"{base}/api/v1/cases/{case['id']}", headers=headers, timeout=5).json()
        refs = [ref for inc in detail["incidents"] for ref in inc.get("evidence", [])]
        snapshots = [r for r in refs if r["kind"] in ("snapshot", "snapshot_annotated")]
        assert len(snapshots) == 2, detail
        image = httpx.get(f"{base}/api/v1/evidence/{snapshots[0]['sha256']}", headers=headers, timeout=5)
        assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
        # the camera's latest picture for the zone editor was uploaded at start
        picture = httpx.get(f"{base}/api/v1/cameras/edge-demo/street-01/snapshot", headers=headers, timeout=5)
        assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
        # the edge registered the configuration it runs: the zone editor has version 1 to edit,
        # and the dry run's camera menu lists the demo camera
        document = httpx.get(f"{base}/api/v1/edges/edge-demo/config/document", headers=headers, timeout=5)
        assert document.status_code == 200, document.text
        body = document.json()
        assert body["version"] == 1 and [c["id"] for c in body["document"]["cameras"]] == ["street-01"]
        assert body["document"]["cameras"][0]["zones"][0]["rules"][0]["type"] == "static_object"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, out.read_text()[-3000:]
    assert "stopping edge, hub and broker" in out.read_text()
    # no child left behind
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True).stdout
    assert leftovers.strip() == "", leftovers
