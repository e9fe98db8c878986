"""QR sheets for posting at patrol points: A4 SVG pages, one or many codes a page.

Each code carries the point's report URL (``BASE_URL/r/POINT``), with the point id, a short
instruction in Chinese and the URL printed under it (a resident without a QR reader can type it;
a patrol officer can check the right sheet hangs at the right point). The QR codes come from
**segno**: pure Python with no dependencies, maintained, standard-conformant (ISO/IEC 18004), and
it exposes the module matrix, so the codes are drawn as crisp vector paths at any print size.
SVG rather than PDF: text in Chinese prints with the printer's or browser's CJK fonts, where a
PDF would have to embed a CJK font.

>>> pages = render_sheets([PointLabel("P-001", "东门北侧")], base_url="https://hub.example", per_page=4)
>>> len(pages), pages[0].count("<path"), "P-001" in pages[0]
(1, 1, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

import segno

INSTRUCTION = "扫码上报乱停车、占道经营、堆物等街面问题"
LAYOUTS: dict[int, tuple[int, int]] = {1: (1, 1), 2: (1, 2), 4: (2, 2), 6: (2, 3), 8: (2, 4), 12: (3, 4)}
PAGE_W, PAGE_H, MARGIN = 210.0, 297.0, 10.0  # A4 in millimetres


@dataclass(frozen=True)
class PointLabel:
    id: str
    description: str = ""


def point_url(base_url: str, point_id: str) -> str:
    return f"{base_url.rstrip('/')}/r/{quote(point_id)}"


def _qr_path(data: str, x: float, y: float, size: float) -> str:
    """The QR code for ``data`` as one SVG path filling a ``size`` mm square at (x, y)."""
    code = segno.make(data, error="m", micro=False)
    rows = [list(row) for row in code.matrix_iter(border=4)]
    module = size / len(rows)
    parts = []
    for r, row in enumerate(rows):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                parts.append(
                    f"M{x + start * module:.3f} {y + r * module:.3f}h{(c - start) * module:.3f}v{module:.3f}h{-(c - start) * module:.3f}z"
                )
            else:
                c += 1
    return f'<path d="{"".join(parts)}" fill="#000"/>'


def _cell(label: PointLabel, base_url: str, x: float, y: float, w: float, h: float) -> str:
    url = point_url(base_url, label.id)
    text_h = min(h * 0.28, 40.0)
    size = min(w, h - text_h) * 0.92
    qx, qy = x + (w - size) / 2, y + (h - text_h - size) / 2
    font = max(min(w / 16, 9.0), 2.6)
    cx = x + w / 2
    ty = y + h - text_h
    lines = [
        (f"{label.id}", font * 1.25, "700"),
        (INSTRUCTION, font * 0.8, "400"),
        (label.description[:40], font * 0.7, "400"),
        (url, font * 0.6, "400"),
    ]
    texts, yy = [], ty + font * 1.1
    for text, fs, weight in lines:
        if text:
            texts.append(
                f'<text x="{cx:.2f}" y="{yy:.2f}" font-size="{fs:.2f}" font-weight="{weight}" '
                f'text-anchor="middle">{escape(text)}</text>'
            )
            yy += fs * 1.35
    frame = f'<rect x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{h:.2f}" fill="none" stroke="#999" stroke-width="0.2" stroke-dasharray="2 2"/>'
    return f'<g data-point-id="{escape(label.id)}">{frame}{_qr_path(url, qx, qy, size)}{"".join(texts)}</g>'


def render_sheets(points: Sequence[PointLabel], *, base_url: str, per_page: int = 1) -> list[str]:
    """One SVG document per A4 page; ``per_page`` is one of :data:`LAYOUTS`."""
    if per_page not in LAYOUTS:
        raise ValueError(f"per_page must be one of {', '.join(map(str, LAYOUTS))}, not {per_page}")
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"the base URL must start with http:// or https://, got {base_url!r}")
    cols, rows = LAYOUTS[per_page]
    cw, ch = (PAGE_W - 2 * MARGIN) / cols, (PAGE_H - 2 * MARGIN) / rows
    pages = []
    for start in range(0, len(points), per_page):
        cells = [
            _cell(p, base_url, MARGIN + (i % cols) * cw, MARGIN + (i // cols) * ch, cw, ch)
            for i, p in enumerate(points[start : start + per_page])
        ]
        pages.append(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{PAGE_W:g}mm" height="{PAGE_H:g}mm" '
            f'viewBox="0 0 {PAGE_W:g} {PAGE_H:g}" font-family="Noto Sans CJK SC, PingFang SC, Microsoft YaHei, sans-serif">'
            f'<rect width="100%" height="100%" fill="#fff"/>{"".join(cells)}</svg>\n'
        )
    return pages
