"""An edge's configuration as a JSON document, for the console's zone editor.

The console is plain JavaScript without dependencies, so it cannot parse or write YAML; the hub
does that here. ``GET`` parses the current version's YAML into JSON; ``PUT`` renders the JSON
with ``yaml.safe_dump`` and stores it exactly as ``PUT .../config`` would (same validation, same
422 ``problems``, same publication). Comments in the hand-written YAML are lost on a save from
the editor: the version history keeps the earlier text.
"""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field

from gridwarden.hub.api.configs import invalid, send_version
from gridwarden.hub.api.deps import MAX_DB_INT, Publisher, Services, error, require
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.config_store import ConfigStore, UnknownConfigVersion
from gridwarden.yamlconfig import ConfigError

Reader = Annotated[Principal, Depends(require(Permission.READ_FLEET))]
Writer = Annotated[Principal, Depends(require(Permission.CONFIGURE))]


class ConfigDocument(BaseModel):
    edge_id: str
    version: int
    document: dict[str, Any]


class ConfigDocumentPut(BaseModel):
    document: dict[str, Any] = Field(description="The whole edge configuration as JSON.")
    comment: str = Field(default="", max_length=2000)
    base_version: int | None = Field(
        default=None,
        ge=0,  # 0: the edit began when no version was stored
        le=MAX_DB_INT,
        description="The version the edit started from; 409 if another was stored since.",
    )


class ConfigDocumentResult(ConfigDocument):
    published: bool
    publish_error: str | None = None


def render_yaml(document: dict[str, Any]) -> str:
    """The YAML text stored for a document: block style, keys in the document's order."""
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=None)


router = APIRouter(prefix="/api/v1/edges/{edge_id}/config/document", tags=["configuration"])


@router.get("", response_model=ConfigDocument, summary="The current configuration, parsed to JSON")
def get_document(edge_id: str, services: Services, _: Reader) -> ConfigDocument:
    try:
        current = ConfigStore(services.db).current(edge_id)
    except UnknownConfigVersion as exc:
        raise error(status.HTTP_404_NOT_FOUND, "no_config", str(exc)) from None
    document = yaml.safe_load(current.yaml)
    return ConfigDocument(edge_id=edge_id, version=current.version, document=document)


@router.put("", response_model=ConfigDocumentResult, summary="Store a configuration given as JSON")
def put_document(
    edge_id: str, body: ConfigDocumentPut, services: Services, publisher: Publisher, who: Writer
) -> ConfigDocumentResult:
    store = ConfigStore(services.db)
    if body.base_version is not None:
        try:
            latest = store.current(edge_id).version
        except UnknownConfigVersion:
            latest = None
        if latest != body.base_version:
            raise error(
                status.HTTP_409_CONFLICT,
                "stale_config",
                f"version {latest} was stored after version {body.base_version} was opened; reload",
                current_version=latest,
            )
    try:
        stored = store.put(edge_id, render_yaml(body.document), author=who.username, comment=body.comment)
    except ConfigError as exc:
        raise invalid(exc) from None
    published, why = send_version(publisher, store, stored)
    return ConfigDocumentResult(
        edge_id=edge_id,
        version=stored.version,
        document=yaml.safe_load(stored.yaml),
        published=published,
        publish_error=why,
    )
