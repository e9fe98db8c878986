"""Run a hub app with the public report pages under uvicorn (a separate process for the flood
test, so the flooding clients and the server do not share one interpreter lock).

usage: python -m tests.residents.serve_resident_hub DB_URL EVIDENCE_DIR PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

from gridwarden.hub.db.engine import Database
from tests.residents.helpers import resident_app


def main() -> None:
    db_url, evidence, port = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    app = resident_app(Database.open(db_url), evidence)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
