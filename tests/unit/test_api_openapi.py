"""The REST API's OpenAPI document and routing, without servers: create_app connects to
nothing until a request needs the database or the broker."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from farm.api.app import create_app, principal
from farm.config import Settings
from farm.tokens import Principal

JOB_ROUTES = {
    "get_job": ("/jobs/{job_id}", "get"),
    "change_job_priority": ("/jobs/{job_id}", "patch"),
    "cancel_job": ("/jobs/{job_id}/cancel", "post"),
    "retry_job": ("/jobs/{job_id}/retry", "post"),
    "pause_job": ("/jobs/{job_id}/pause", "post"),
    "resume_job": ("/jobs/{job_id}/resume", "post"),
    "list_job_artifacts": ("/jobs/{job_id}/artifacts", "get"),
}


def _admin() -> Principal:
    return Principal("unit", read_only=False, admin=True)


@pytest.fixture(scope="module")
def app() -> FastAPI:
    # Nothing listens there: a request that reached the database would fail.
    return create_app(
        Settings(
            database_url="postgresql://nobody@127.0.0.1:9/none", broker_url="redis://127.0.0.1:9/0"
        )
    )


@pytest.fixture(scope="module")
def doc(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def request(app: FastAPI, method: str, path: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://farm") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(go())


def operations(doc: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        op["operationId"]: (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }


def test_every_operation_has_an_explicit_operation_id(doc: dict[str, Any]) -> None:
    ops = operations(doc)
    assert len(ops) == sum(len(item) for item in doc["paths"].values())  # unique
    for op_id, route in JOB_ROUTES.items():
        assert ops[op_id][:2] == route
    assert ops["create_job"][:2] == ("/jobs", "post")
    # FastAPI's generated ids end in the path and method (create_job_jobs_post).
    assert not [i for i in ops if i.endswith(("_get", "_post", "_patch"))]


@pytest.mark.parametrize("status", ["201", "200"])
def test_post_jobs_links_the_new_job_to_every_route_of_the_job(
    doc: dict[str, Any], status: str
) -> None:
    links = doc["paths"]["/jobs"]["post"]["responses"][status]["links"]
    assert {link["operationId"] for link in links.values()} == set(JOB_ROUTES)
    for link in links.values():
        assert link["parameters"] == {"job_id": "$response.body#/id"}


def test_a_job_answer_links_to_the_jobs_other_routes(doc: dict[str, Any]) -> None:
    for op_id, (path, method) in JOB_ROUTES.items():
        if op_id == "list_job_artifacts":
            continue  # answers a list of artifacts, not the job
        links = doc["paths"][path][method]["responses"]["200"]["links"]
        assert {link["operationId"] for link in links.values()} == set(JOB_ROUTES) - {op_id}


def test_every_link_names_an_operation_and_its_parameters(doc: dict[str, Any]) -> None:
    ops = operations(doc)
    seen = 0
    for item in doc["paths"].values():
        for op in item.values():
            for response in op["responses"].values():
                for link in response.get("links", {}).values():
                    target = ops[link["operationId"]][2]
                    names = {p["name"] for p in target.get("parameters", [])}
                    assert set(link["parameters"]) <= names, link
                    assert all(
                        v.startswith("$response.body#/") for v in link["parameters"].values()
                    )
                    seen += 1
    assert seen >= 2 * len(JOB_ROUTES)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/jobs", "GET, POST"),
        ("DELETE", "/jobs", "GET, POST"),
        ("PUT", "/jobs/7", "GET, PATCH"),
        ("GET", "/jobs/7/retry", "POST"),
        ("POST", "/workers", "GET"),
    ],
)
def test_405_allows_every_method_of_the_path(
    app: FastAPI, method: str, path: str, allow: str
) -> None:
    r = request(app, method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == allow
    assert r.json() == {"error": "Method Not Allowed", "problems": []}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PATCH", "/jobs/7", {"priority": True}, "priority"),
        ("PATCH", "/jobs/7", {"priority": "90"}, "priority"),
        ("POST", "/jobs", {"kind": "train", "name": "t", "seed": False}, "seed"),
        ("POST", "/jobs", {"kind": "train", "name": "t", "epochs": "2"}, "epochs"),
        (
            "POST",
            "/jobs",
            {"kind": "render", "checkpoint": "a.safetensors", "frames": 5, "width": "64"},
            "width",
        ),
        ("PUT", "/limits/lic", {"count": True}, "count"),
        ("PUT", "/projects/show", {"weight": True}, "weight"),
        ("PUT", "/projects/show", {"max_running": False}, "max_running"),
    ],
)
def test_a_json_value_of_the_wrong_type_is_refused_not_coerced(
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    """The spec models read ``"2"`` or ``true`` as integers (YAML and CSV manifests); over JSON
    the API holds each value to the type its schema publishes."""
    monkeypatch.setitem(app.dependency_overrides, principal, _admin)
    r = request(app, method, path, json=body)
    assert r.status_code == 422, r.text
    assert [p["field"] for p in r.json()["problems"]] == [field]


def test_an_integer_written_as_22_0_is_still_an_integer(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSON Schema's integer includes 22.0: the type check passes it on to the route (whose
    database call is replaced here)."""
    from farm.api import routes

    calls: list[int] = []

    def no_database(request: Any, actor: Any, job_id: int, fn: Any, *args: Any) -> dict[str, Any]:
        calls.append(args[0])
        raise routes.JobNotFound(str(job_id))

    monkeypatch.setattr(routes, "_verb", no_database)
    monkeypatch.setitem(app.dependency_overrides, principal, _admin)
    r = request(app, "PATCH", "/jobs/7", json={"priority": 22.0})
    assert (r.status_code, calls) == (404, [22])


def test_the_token_is_checked_before_the_body(app: FastAPI) -> None:
    r = request(app, "PATCH", "/jobs/7", json={"priority": True})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


def test_a_boolean_for_a_number_is_refused_saying_so(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.dependency_overrides, principal, _admin)
    r = request(app, "PUT", "/limits/lic", json={"count": True})
    assert r.json()["problems"] == [
        {"field": "count", "reason": "must be an integer, not a boolean"}
    ]
    r = request(app, "PUT", "/projects/show", json={"weight": False})
    assert r.json()["problems"] == [
        {"field": "weight", "reason": "must be a number, not a boolean"}
    ]


def test_every_answer_carries_the_request_id_given_or_a_new_one(app: FastAPI) -> None:
    r = request(app, "GET", "/jobs", headers={"X-Request-ID": "pipe-42.a"})
    assert (r.status_code, r.headers["x-request-id"]) == (401, "pipe-42.a")
    fresh = request(app, "GET", "/jobs", headers={"X-Request-ID": "bad id\twith spaces"})
    made = request(app, "GET", "/jobs")
    for r in (fresh, made):
        assert len(r.headers["x-request-id"]) == 32, r.headers
    assert fresh.headers["x-request-id"] != made.headers["x-request-id"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "99999999w"}, "since"),
        ({"action": "explode"}, "action"),
        ({"actor": "a\x00b"}, "actor"),
        ({"job": "0"}, "job"),
        ({"limit": "501"}, "limit"),
        ({"before": "x"}, "before"),
    ],
)
def test_a_bad_audit_filter_is_refused_naming_it(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch, query: dict[str, str], field: str
) -> None:
    """Refused before any query (nothing listens at the test's database)."""
    monkeypatch.setitem(app.dependency_overrides, principal, lambda: Principal("unit", True))
    r = request(app, "GET", "/audit", params=query)
    assert r.status_code == 422, r.text
    assert [p["field"] for p in r.json()["problems"]] == [field]
