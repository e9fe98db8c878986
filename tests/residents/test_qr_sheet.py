"""`gridwarden qr import` and `gridwarden qr sheet`: printed codes decode to the point's report URL."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from gridwarden.cli import main
from tests.residents.helpers import POINTS_CSV


def _decode_qr_paths(svg: str) -> list[str]:
    """Rasterise each point's QR path (as drawn: runs of modules) and decode it with OpenCV."""
    found = []
    for group in re.findall(r'<g data-point-id="[^"]+">(.*?)</g>', svg):
        d = re.search(r'<path d="([^"]+)"', group).group(1)
        runs = [tuple(map(float, m)) for m in re.findall(r"M([\d.]+) ([\d.]+)h([\d.]+)v([\d.]+)", d)]
        x0, y0 = min(r[0] for r in runs), min(r[1] for r in runs)
        module = min(r[3] for r in runs)
        scale = 8 / module  # 8 px a module
        size = int(max(r[0] + r[2] for r in runs) * scale - x0 * scale) + 8 * 12
        img = np.full((size, size), 255, np.uint8)
        for x, y, w, h in runs:
            px, py = int(round((x - x0) * scale)) + 32, int(round((y - y0) * scale)) + 32
            img[py : py + int(round(h * scale)), px : px + int(round(w * scale))] = 0
        text, _points, _ = cv2.QRCodeDetector().detectAndDecode(img)
        found.append(text)
    return found


def test_import_then_sheet_prints_decodable_codes(tmp_path: Path, capsys) -> None:
    db = f"sqlite:///{tmp_path}/hub.db"
    csv_file = tmp_path / "points.csv"
    csv_file.write_text(POINTS_CSV, encoding="utf-8")
    assert main(["qr", "--db", db, "import", str(csv_file)]) == 0
    assert "2 points: 2 new, 0 updated" in capsys.readouterr().out
    out = tmp_path / "sheets"
    assert (
        main(
            [
                "qr",
                "--db",
                db,
                "sheet",
                str(out),
                "--base-url",
                "https://report.example.cn",
                "--per-page",
                "4",
            ]
        )
        == 0
    )
    pages = sorted(out.glob("qr-sheet-*.svg"))
    assert [p.name for p in pages] == ["qr-sheet-001.svg"]
    svg = pages[0].read_text(encoding="utf-8")
    assert "扫码上报" in svg and "东门公交站北侧" in svg and "https://report.example.cn/r/P-001" in svg
    assert _decode_qr_paths(svg) == ["https://report.example.cn/r/P-001", "https://report.example.cn/r/P-002"]
    assert main(["qr", "--db", db, "sheet", str(out), "--base-url", "https://x.cn", "--per-page", "1"]) == 0
    assert len(list(out.glob("qr-sheet-*.svg"))) == 2


def test_bad_import_names_line_and_field_and_changes_nothing(tmp_path: Path, capsys) -> None:
    db = f"sqlite:///{tmp_path}/hub.db"
    bad = tmp_path / "points.csv"
    bad.write_text("id,lat,lon\nP-1,31.2,121.4\nP 2,91,121.4\n", encoding="utf-8")
    assert main(["qr", "--db", db, "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: line 3: id:" in err and f"{bad}: line 3: lat:" in err
    assert main(["qr", "--db", db, "sheet", str(tmp_path / "o"), "--base-url", "https://x.cn"]) == 1
    assert "no QR points" in capsys.readouterr().err
