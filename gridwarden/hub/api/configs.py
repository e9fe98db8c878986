"""``/api/v1/edges/{edge_id}/config``: each edge's configuration, its history, changes and rollback.

Reads need ``fleet:read``; changes need ``config:write``. ``PUT .../config`` takes either JSON
(``{"yaml": ..., "comment": ...}``) or the YAML file itself as the body (``Content-Type:
application/yaml``, ``text/yaml``, ``application/x-yaml`` or ``text/plain``; the comment then in
``?comment=``). ``PUT .../config/running`` is for the edge itself (role ``edge``): when it
connects it sends the configuration it runs, which becomes version 1 if the hub has none, so a
new edge can be edited in the console at once; a hub that has a version keeps it. A change is validated first (an
invalid configuration is refused with 422 and every ``file:line: field: message`` problem, and
nothing is stored or sent), then stored as the edge's next version, then published retained on
the edge's config topic. Publishing needs the broker: when it is down the version is stored and
the answer says ``published: false`` with the reason; ``POST .../config/publish`` sends the
current version again later.

The publisher is the hub's :class:`ConfigPublisher` (``HubServices.config_publisher``, built by
:func:`gridwarden.hub.app.build_hub`); without one, versions are stored but not sent.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from gridwarden.hub.api.deps import MAX_DB_INT, Publisher, Services, error, require
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.config_push import ConfigPublisher, ConfigPublishError
from gridwarden.hub.config_store import MAX_CONFIG_BYTES, ConfigStore, ConfigVersion, UnknownConfigVersion
from gridwarden.yamlconfig import ConfigError


class ConfigPutBody(BaseModel):
    yaml: str = Field(
        min_length=1,
        max_length=1_000_000,
        description="The edge's whole configuration file (edge YAML format).",
    )
    comment: str = Field(default="", max_length=2000, description="Why it changed, for the history.")


class ConfigRollbackBody(BaseModel):
    version: int = Field(
        ge=1, le=MAX_DB_INT, description="The earlier version whose text becomes the new version."
    )
    comment: str = Field(default="", max_length=2000)


class ConfigVersionSummary(BaseModel):
    edge_id: str
    version: int
    site: str
    sha256: str
    author: str
    comment: str
    rollback_of: int | None
    created_at: datetime
    published_at: datetime | None


class ConfigVersionDetail(ConfigVersionSummary):
    yaml: str
    diff: str | None = Field(default=None, description="Unified diff against the previous version.")


class ConfigChangeResult(ConfigVersionDetail):
    published: bool
    publish_error: str | None = None


# Module level: with postponed annotations FastAPI resolves these names in the module's globals.
Reader = Annotated[Principal, Depends(require(Permission.READ_FLEET))]
Writer = Annotated[Principal, Depends(require(Permission.CONFIGURE))]
EdgeUploader = Annotated[Principal, Depends(require(Permission.UPLOAD_EVIDENCE))]

YAML_MEDIA_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
_BODY_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": ConfigPutBody.model_json_schema()},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


class RunningConfigResult(BaseModel):
    edge_id: str
    registered: bool = Field(description="True: stored as version 1; false: the hub already had a version.")
    version: int = Field(description="The hub's current version of this edge's configuration.")
    published: bool = False


async def read_config_body(request: Request, comment: str) -> ConfigPutBody:
    """The YAML text and comment of a PUT, from JSON or from a raw YAML body (bounded in size)."""
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > 4 * MAX_CONFIG_BYTES:
        raise error(
            status.HTTP_413_CONTENT_TOO_LARGE, "too_large", f"at most {MAX_CONFIG_BYTES} bytes of YAML"
        )
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > 4 * MAX_CONFIG_BYTES:  # JSON escaping may grow the text; the store checks the text
            raise error(
                status.HTTP_413_CONTENT_TOO_LARGE, "too_large", f"at most {MAX_CONFIG_BYTES} bytes of YAML"
            )
    if media in YAML_MEDIA_TYPES:
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise error(422, "invalid_body", "the YAML body is not UTF-8 text") from None
        if not text.strip():
            raise error(422, "invalid_body", "the YAML body is empty")
        return ConfigPutBody(yaml=text, comment=comment)
    if media != "application/json":
        raise error(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            f"send application/json ({{yaml, comment}}) or the YAML itself as {', '.join(YAML_MEDIA_TYPES)}",
        )
    try:
        return ConfigPutBody.model_validate_json(bytes(raw))
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
        raise error(422, "invalid_body", "the body is not {yaml, comment}", problems=problems) from None


def _summary(v: ConfigVersion) -> ConfigVersionSummary:
    return ConfigVersionSummary.model_validate(v, from_attributes=True)


router = APIRouter(prefix="/api/v1/edges/{edge_id}/config", tags=["configuration"])


def store_of(services: Services) -> ConfigStore:
    return ConfigStore(services.db)


def detail(store: ConfigStore, v: ConfigVersion) -> ConfigVersionDetail:
    return ConfigVersionDetail.model_validate({**asdict(v), "diff": store.diff(v.edge_id, v.version)})


def not_found(exc: UnknownConfigVersion) -> Exception:
    return error(status.HTTP_404_NOT_FOUND, "no_config", str(exc))


def invalid(exc: ConfigError) -> Exception:
    """422 with every ``file:line: field: message`` problem (also used by the document routes)."""
    problems = [str(p) for p in exc.problems]
    return error(
        422,  # Unprocessable Content: the body parsed but is not a valid configuration
        "invalid_config",
        f"the configuration has {len(problems)} problem(s); nothing was stored or sent",
        problems=problems,
    )


def send_version(
    pub: ConfigPublisher | None, store: ConfigStore, v: ConfigVersion
) -> tuple[bool, str | None]:
    """Publish ``v`` and mark it published: ``(True, None)``, or ``(False, why not)``."""
    if pub is None:
        return False, "no broker connection is configured on this hub"
    try:
        pub.publish(v)
    except ConfigPublishError as exc:
        return False, str(exc)
    store.mark_published(v.edge_id, v.version)
    return True, None


def publish(pub: ConfigPublisher | None, store: ConfigStore, v: ConfigVersion) -> ConfigChangeResult:
    published, why = send_version(pub, store, v)
    v = store.get(v.edge_id, v.version)
    return ConfigChangeResult.model_validate(
        {**detail(store, v).model_dump(), "published": published, "publish_error": why}
    )


@router.get("", response_model=ConfigVersionDetail, summary="The edge's current configuration")
def current_config(edge_id: str, services: Services, _: Reader) -> ConfigVersionDetail:
    store = store_of(services)
    try:
        return detail(store, store.current(edge_id))
    except UnknownConfigVersion as exc:
        raise not_found(exc) from None


@router.get("/versions", response_model=list[ConfigVersionSummary], summary="Every version, newest first")
def list_versions(edge_id: str, services: Services, _: Reader) -> list[ConfigVersionSummary]:
    return [_summary(v) for v in store_of(services).history(edge_id)]


@router.get("/versions/{version}", response_model=ConfigVersionDetail, summary="One version with its diff")
def get_version(
    edge_id: str,
    version: Annotated[int, PathParam(ge=1, le=MAX_DB_INT)],
    services: Services,
    _: Reader,
) -> ConfigVersionDetail:
    store = store_of(services)
    try:
        return detail(store, store.get(edge_id, version))
    except UnknownConfigVersion as exc:
        raise not_found(exc) from None


@router.put(
    "",
    response_model=ConfigChangeResult,
    summary="Validate, store and send a new configuration (JSON or raw YAML body)",
    openapi_extra=_BODY_OPENAPI,
)
async def put_config(
    edge_id: str,
    request: Request,
    services: Services,
    publisher: Publisher,
    who: Writer,
    comment: Annotated[str, Query(max_length=2000, description="With a raw YAML body")] = "",
) -> ConfigChangeResult:
    body = await read_config_body(request, comment)
    store = store_of(services)

    def store_and_publish() -> ConfigChangeResult:
        try:
            v = store.put(edge_id, body.yaml, author=who.username, comment=body.comment)
        except ConfigError as exc:
            raise invalid(exc) from None
        return publish(publisher, store, v)

    return await run_in_threadpool(store_and_publish)


@router.put(
    "/running",
    response_model=RunningConfigResult,
    summary="The edge registers the configuration it runs (version 1 unless the hub has one)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/yaml": {"schema": {"type": "string"}}}}
    },
)
async def register_running(
    edge_id: str, request: Request, services: Services, publisher: Publisher, who: EdgeUploader
) -> RunningConfigResult:
    body = await read_config_body(request, "")
    store = store_of(services)

    def register() -> RunningConfigResult:
        try:
            v = store.register_running(edge_id, body.yaml, author=who.username)
        except ConfigError as exc:
            raise invalid(exc) from None
        if v is None:
            return RunningConfigResult(
                edge_id=edge_id, registered=False, version=store.current(edge_id).version
            )
        # Sent back on the edge's retained config topic: the edge applies it as version 1
        # (unchanged zones keep their timers), so the fleet view shows which version it runs.
        result = publish(publisher, store, v)
        return RunningConfigResult(
            edge_id=edge_id, registered=True, version=v.version, published=result.published
        )

    return await run_in_threadpool(register)


@router.post("/rollback", response_model=ConfigChangeResult, summary="Make an earlier version current again")
def rollback(
    edge_id: str, body: ConfigRollbackBody, services: Services, publisher: Publisher, who: Writer
) -> ConfigChangeResult:
    store = store_of(services)
    try:
        v = store.rollback(edge_id, body.version, author=who.username, comment=body.comment)
    except UnknownConfigVersion as exc:
        raise not_found(exc) from None
    except ConfigError as exc:
        raise invalid(exc) from None
    return publish(publisher, store, v)


@router.post("/publish", response_model=ConfigChangeResult, summary="Send the current version again")
def republish(edge_id: str, services: Services, publisher: Publisher, _: Writer) -> ConfigChangeResult:
    store = store_of(services)
    try:
        return publish(publisher, store, store.current(edge_id))
    except UnknownConfigVersion as exc:
        raise not_found(exc) from None
