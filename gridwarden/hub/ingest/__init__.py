"""MQTT ingestion: edge messages in, rows committed, then (and only then) acknowledged.

One module per step, in the order a message passes them:

* :mod:`.validation` — the message against the wire contract (size, JSON, schema, topic);
* :mod:`.storage` — :func:`ingest_batch` / :func:`ingest_payload` on a SQLAlchemy session, no
  MQTT: store once, fold into the incident, open or join a case, sequence bookkeeping;
* :mod:`.consumer` — :class:`HubIngestor`, the MQTT 5 consumer that batches messages into
  transactions and acknowledges after commit;
* :mod:`.results` — what one message came to (:class:`IngestResult`).

The consumer runs inside ``gridwarden hub serve`` (built by :func:`gridwarden.hub.app.build_hub`).
"""

from gridwarden.hub.ingest.consumer import HubIngestor, IngestStats
from gridwarden.hub.ingest.results import IngestResult, Outcome, RejectReason
from gridwarden.hub.ingest.storage import ingest_batch, ingest_payload
from gridwarden.hub.ingest.validation import Parsed, Rejection, validate_message

__all__ = [
    "HubIngestor",
    "IngestResult",
    "IngestStats",
    "Outcome",
    "Parsed",
    "RejectReason",
    "Rejection",
    "ingest_batch",
    "ingest_payload",
    "validate_message",
]
