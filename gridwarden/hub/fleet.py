"""The fleet as the hub knows it from the edges' retained status topics: edges, cameras, and the
messages the ingest refused. Read-only queries for the API and the console; nothing here
changes a case (that is :mod:`gridwarden.hub.cases`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gridwarden.hub import seq_gaps
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import Camera, Edge, EdgeSequence, RejectedMessage
from gridwarden.hub.schemas import CameraView, EdgeView, RejectedCount, status_fields


class FleetService:
    """Edges and cameras with their last reported status; each call is one short read."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def list_edges(self) -> list[EdgeView]:
        with self.db.session() as session:
            rows = session.execute(
                select(Edge, EdgeSequence)
                .outerjoin(EdgeSequence, EdgeSequence.edge_id == Edge.edge_id)
                .order_by(Edge.site, Edge.edge_id)
            ).all()
        views = []
        for edge, seq in rows:
            values: dict[str, Any] = {
                "edge_id": edge.edge_id,
                "site": edge.site,
                "online": edge.online,
                "status_wall_time": edge.status_wall_time,
                "updated_at": edge.updated_at,
                **status_fields(edge.status, "version", "model", "config_version", "outbox_depth"),
            }
            if seq is not None:
                values |= {
                    "highest_seen_seq": seq.highest_seen_seq,
                    "highest_contiguous_seq": seq.highest_contiguous_seq,
                    "missing_seqs": seq_gaps.expand(seq_gaps.normalise(seq.missing), cap=1000),
                    "gaps_seen": seq.gaps_seen,
                }
            views.append(EdgeView.model_validate(values))
        return views

    def list_cameras(self) -> list[CameraView]:
        with self.db.session() as session:
            cameras = session.scalars(select(Camera).order_by(Camera.edge_id, Camera.camera_id)).all()
        return [
            CameraView.model_validate(
                {
                    "edge_id": c.edge_id,
                    "camera_id": c.camera_id,
                    "state": c.state,
                    "status_wall_time": c.status_wall_time,
                    "updated_at": c.updated_at,
                    **status_fields(
                        c.status,
                        "kind",
                        "input_fps",
                        "analysed_fps",
                        "lag_s",
                        "reconnects",
                        "last_error",
                        "last_frame_wall_time",
                        "location",
                    ),  # fmt: skip
                }
            )
            for c in cameras
        ]

    def rejected_messages(self) -> list[RejectedCount]:
        """Counters of messages the ingestor refused, by reason."""
        with self.db.session() as session:
            rows = session.scalars(select(RejectedMessage).order_by(RejectedMessage.reason)).all()
            return [RejectedCount.model_validate(r) for r in rows]
