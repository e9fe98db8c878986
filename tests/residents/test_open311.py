"""Open311 GeoReport v2: the hub's documents have the shapes of the specification's examples,
and requests filed over it become cases that status and filters follow."""

from __future__ import annotations

import json
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from fastapi.testclient import TestClient

from gridwarden.hub.db.engine import Database
from tests.hub_api.conftest import bearer, ingest, seed_events
from tests.residents import open311_spec_examples as spec
from tests.residents.helpers import resident_app


def _shape(value):
    """Field names (and nesting) of a JSON document, values dropped; a list is the shape of its
    first item ("list" when empty, which matches a list of anything)."""
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return [(k, _shape(v)) for k, v in value.items()]
    return None


def _same_shape(got, example) -> bool:
    if isinstance(example, list) and isinstance(got, list):
        return not got or not example or _same_shape(got[0], example[0])
    if isinstance(example, dict) and isinstance(got, dict):
        return list(got) == list(example) and all(_same_shape(got[k], example[k]) for k in example)
    return not isinstance(got, (list, dict)) and not isinstance(example, (list, dict))


LISTS = ("service_requests", "services", "errors", "attributes", "values")


def _xml_shape(el: ET.Element):
    """Element names and nesting; a list element is the shape of its first child."""
    children = list(el)[:1] if el.tag in LISTS else list(el)
    return (el.tag, [_xml_shape(c) for c in children])


def _same_xml(got: ET.Element, example: ET.Element) -> bool:
    if got.tag != example.tag:
        return False
    if got.tag in LISTS:
        return not len(got) or _same_xml(got[0], example[0])
    return len(got) == len(example) and all(_same_xml(a, b) for a, b in zip(got, example, strict=True))


def _client(db: Database) -> TestClient:
    return TestClient(resident_app(db, Path(tempfile.mkdtemp(prefix="open311-"))))


def _post(client: TestClient, fmt: str = "json", **fields: str):
    return client.post(f"/open311/v2/requests.{fmt}", data=fields)


def test_documents_have_the_spec_examples_shapes(db: Database, tokens) -> None:
    c = _client(db)
    pairs = [
        ("services", spec.SERVICES_JSON, spec.SERVICES_XML),
        ("services/0506", spec.DEFINITION_JSON, spec.DEFINITION_XML),
    ]
    for path, example_json, example_xml in pairs:
        assert _same_shape(c.get(f"/open311/v2/{path}.json").json(), json.loads(example_json)), path
        got = ET.fromstring(c.get(f"/open311/v2/{path}.xml").content)
        assert _same_xml(got, ET.fromstring(example_xml.encode())), path

    key = tokens["staff"]
    created = _post(
        c,
        api_key=key,
        service_code="0506",
        lat="31.23",
        long="121.47",
        description="单车堵路",
        first_name="Li",
    )
    assert created.status_code == 200, created.text
    assert _same_shape(created.json(), json.loads(spec.POST_JSON))
    created_xml = _post(c, "xml", api_key=key, service_code="0507", address_string="菜场入口")
    assert _same_xml(ET.fromstring(created_xml.content), ET.fromstring(spec.POST_XML.encode()))

    request_id = created.json()[0]["service_request_id"]
    listed = c.get(f"/open311/v2/requests.json?service_request_id={request_id}").json()
    assert _same_shape(listed, json.loads(spec.REQUESTS_JSON)) and len(listed) == 1
    assert (listed[0]["status"], listed[0]["service_code"], listed[0]["lat"], listed[0]["description"]) == (
        "open",
        "0506",
        31.23,
        "单车堵路",
    )
    one_xml = ET.fromstring(c.get(f"/open311/v2/requests/{request_id}.xml").content)
    assert _same_xml(one_xml, ET.fromstring(spec.REQUESTS_XML.encode()))

    bad_key = _post(c, api_key="nope", service_code="0506", lat="1", long="1")
    assert bad_key.status_code == 403 and _same_shape(bad_key.json(), json.loads(spec.ERROR_JSON))
    bad_xml = _post(c, "xml", api_key="nope", service_code="0506", lat="1", long="1")
    assert _same_xml(ET.fromstring(bad_xml.content), ET.fromstring(spec.ERROR_XML.encode()))


def test_status_filters_tokens_and_refusals(db: Database, tokens) -> None:
    c = _client(db)
    staff = tokens["staff"]
    ids = [
        _post(c, api_key=staff, service_code=code, lat="31.2", long="121.4").json()[0]["service_request_id"]
        for code in ("0505", "0506", "0506")
    ]
    headers = bearer(staff)
    for to in ("in_review", "rejected"):
        resp = c.post(
            f"/api/v1/cases/{ids[2]}/transitions",
            json={"to": to, "reason": "重复上报 duplicate"},
            headers=headers,
        )
        assert resp.status_code == 200
    closed = c.get("/open311/v2/requests.json?status=closed").json()
    assert [(r["service_request_id"], r["status"], r["status_notes"]) for r in closed] == [
        (ids[2], "closed", "重复上报 duplicate")
    ]
    open_0506 = c.get("/open311/v2/requests.json?status=open&service_code=0506").json()
    assert [r["service_request_id"] for r in open_0506] == [ids[1]]
    assert len(c.get("/open311/v2/requests.json?start_date=2000-01-01T00:00:00Z").json()) == 3
    assert c.get("/open311/v2/requests.json?end_date=2000-01-01T00:00:00Z").json() == []

    # unconfirmed camera detections are not requests; a confirmed one is
    camera_case = ingest(db, *seed_events()[:1])[0]
    everything = "/open311/v2/requests.json?start_date=2000-01-01T00:00:00Z"
    assert str(camera_case) not in {r["service_request_id"] for r in c.get(everything).json()}
    for to in ("in_review", "confirmed"):
        c.post(f"/api/v1/cases/{camera_case}/transitions", json={"to": to}, headers=headers)
    assert str(camera_case) in {r["service_request_id"] for r in c.get(everything).json()}
    assert str(camera_case) not in {
        r["service_request_id"] for r in c.get("/open311/v2/requests.json").json()
    }

    # a token (here: a resident's status token) names its request
    from gridwarden.hub.reports.points import PointStore, parse_csv
    from gridwarden.hub.reports.resident import NewReport, ReportService
    from tests.residents.helpers import POINTS_CSV

    PointStore(db).upsert(parse_csv(POINTS_CSV))
    receipt = ReportService(db).submit(NewReport(source="resident", category="0506", point_id="P-001"))
    assert c.get(f"/open311/v2/tokens/{receipt.token}.json").json() == [
        {"service_request_id": str(receipt.case_id), "token": receipt.token}
    ]
    # an Open311 report naming the QR point joins the resident's open case
    joined = _post(c, api_key=staff, service_code="0506", **{"attribute[QR_POINT]": "P-001"}).json()[0]
    assert joined["service_request_id"] == str(receipt.case_id)

    assert c.get("/open311/v2/tokens/unknown.json").status_code == 404
    assert c.get("/open311/v2/requests/999999.json").status_code == 404
    assert c.get("/open311/v2/services/9999.xml").status_code == 404
    assert _post(c, api_key=staff, service_code="0506").status_code == 400  # no location
    assert _post(c, api_key=staff, service_code="9999", lat="1", long="1").status_code == 400
    assert _post(c, api_key=staff, service_code="0506", lat="91", long="1").status_code == 400
    assert _post(c, api_key=tokens["integrator"], service_code="0506", lat="1", long="1").status_code == 403
    assert c.get("/open311/v2/requests.json?status=maybe").status_code == 400
    assert c.get("/open311/v2/requests.json?service_request_id=1;DROP").status_code == 400
