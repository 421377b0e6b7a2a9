"""FMN 3's clients against fmn: FMN 3.4's own OpenAPI document (tests/contract/fmn3-openapi.json,
generated from fmn==3.4.0 by tests/contract/generate_fmn3_openapi.py) drives schemathesis against
the real API. Every FMN 3 operation must exist under the same path and parameter names, answer
well-formed requests (those FMN 3's web app sends) with a 2xx, and answer everything with a
status FMN 3 answers and a body FMN 3.4's response models accept: the document's component
schemas are those pydantic models' JSON schemas, so fmn's additions (extra fields, headers) are
checked against them without installing FMN 3."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
)

from tests.api.fuzz import fuzz

pytestmark = pytest.mark.slow

DOCUMENT = Path(__file__).resolve().parent.parent / "contract" / "fmn3-openapi.json"
FMN3: dict[str, Any] = json.loads(DOCUMENT.read_text())
USER = "root"  # an admin, so the admin operations answer too; the directory knows his address
ADDRESS = "root@example.org"
# FastAPI documents only 200 and 422; FMN 3 also answers these: 400 for a body that is not
# JSON (FastAPI itself), 401 without a valid token, 403 for someone else's rules or a non-admin,
# 404 for no such rule (its handlers' HTTPException).
FMN3_UNDOCUMENTED = {400, 401, 403, 404}
CHECKS = [
    not_a_server_error,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Generated requests per operation and data mode (positive, negative): 18 operations.
EXAMPLES = 6


def fmn3_operations() -> list[Any]:
    schema = schemathesis.openapi.from_dict(FMN3)
    return [result.ok() for result in schema.get_all_operations()]


def check(operation: Any, case: Any, response: httpx.Response | Any) -> None:
    """A status FMN 3 answers, and a body and headers FMN 3's document allows for it."""
    documented = {int(code) for code in operation.definition.raw["responses"]}
    assert response.status_code in documented | FMN3_UNDOCUMENTED, (
        f"{operation.label}: {response.status_code} {response.text[:300]}"
    )
    if response.status_code in FMN3_UNDOCUMENTED:
        assert isinstance(response.json().get("detail"), str), response.text
    case.validate_response(response, checks=CHECKS)


def new_rule(name: str | None = "contract") -> dict[str, Any]:
    """A rule as FMN 3's web app creates one (cleared fields sent as "")."""
    return {
        "name": name,
        "disabled": False,
        "tracking_rule": {"name": "artifacts-owned", "params": [USER]},
        "generation_rules": [
            {
                # The web inbox too: FMN 3.4's models read it as any other destination.
                "destinations": [
                    {"protocol": "email", "address": ADDRESS},
                    {"protocol": "web", "address": USER},
                ],
                "filters": {
                    "applications": ["koji"],
                    "excluded_applications": [],
                    "severities": ["info"],
                    "topic": "",
                    "my_actions": False,
                },
            }
        ],
    }


Call = Callable[..., Any]


FMN_OWN_KINDS = [
    {"name": "applications", "params": ["koji"]},
    {"name": "topics", "params": ["org.fedoraproject.prod.bodhi.*"]},
    {"name": "projects-followed", "params": [{"forge": "pagure.io", "name": "fesco"}]},
]


def well_formed_requests(base: str, headers: dict[str, str]) -> list[tuple[str, str, Call]]:
    """(method, path template, make the case) for each FMN 3 operation, in an order that leaves
    a rule to read, replace, patch and finally delete."""
    rule_id: dict[str, int] = {}
    created = httpx.post(
        f"{base}/api/v1/users/{USER}/rules", headers=headers, json=new_rule(), timeout=30
    )
    created.raise_for_status()
    rule_id["id"] = created.json()["id"]
    # The account has fmn's own kinds of rules too: FMN 3's clients must still read its lists.
    for tracking in FMN_OWN_KINDS:
        httpx.post(
            f"{base}/api/v1/users/{USER}/rules",
            headers=headers,
            json={**new_rule(tracking["name"]), "tracking_rule": tracking},
            timeout=30,
        ).raise_for_status()

    def user(**extra: Any) -> dict[str, Any]:
        return {"username": USER, **extra}

    def rule() -> dict[str, Any]:
        return user(id=rule_id["id"])

    def replaced() -> dict[str, Any]:
        current = httpx.get(
            f"{base}/api/v1/users/{USER}/rules/{rule_id['id']}", headers=headers, timeout=30
        ).json()
        return {**current, "name": "", "disabled": True}

    return [
        ("GET", "/api/v1/users/me", lambda op: op.Case()),
        ("GET", "/api/v1/users", lambda op: op.Case(query={"search": "ro"})),
        ("GET", "/api/v1/users/{username}/info", lambda op: op.Case(path_parameters=user())),
        ("GET", "/api/v1/users/{username}/groups", lambda op: op.Case(path_parameters=user())),
        (
            "GET",
            "/api/v1/users/{username}/destinations",
            lambda op: op.Case(path_parameters=user()),
        ),
        ("GET", "/api/v1/users/{username}/rules", lambda op: op.Case(path_parameters=user())),
        (
            "POST",
            "/api/v1/users/{username}/rules",
            lambda op: op.Case(path_parameters=user(), body=new_rule(name=None)),
        ),
        (
            "GET",
            "/api/v1/users/{username}/rules/{id}",
            lambda op: op.Case(path_parameters=rule()),
        ),
        (
            "PUT",
            "/api/v1/users/{username}/rules/{id}",
            lambda op: op.Case(path_parameters=rule(), body=replaced()),
        ),
        ("GET", "/api/v1/applications", lambda op: op.Case()),
        ("GET", "/api/v1/artifacts", lambda op: op.Case(query={"names": "*foo*"})),
        ("GET", "/api/v1/healthz/live", lambda op: op.Case()),
        ("GET", "/api/v1/healthz/ready", lambda op: op.Case()),
        ("GET", "/api/v1/admin/rules", lambda op: op.Case(query={"disabled": "true"})),
        ("GET", "/api/v1/admin/users", lambda op: op.Case(query={"search": "o"})),
        (
            "PATCH",
            "/api/v1/admin/rules/{id}",
            lambda op: op.Case(path_parameters={"id": rule_id["id"]}, body={"disabled": False}),
        ),
        (
            "PATCH",
            "/api/v1/admin/rules/{id}",
            lambda op: op.Case(path_parameters={"id": rule_id["id"]}, body={}),
        ),
        (
            "DELETE",
            "/api/v1/users/{username}/rules/{id}",
            lambda op: op.Case(path_parameters=rule()),
        ),
    ]


def test_every_fmn3_operation_is_served_under_its_path_and_parameter_names(
    live_api: str,
) -> None:
    ours = httpx.get(f"{live_api}/api/v1/openapi.json").json()["paths"]
    for path, operations in FMN3["paths"].items():
        assert path in ours, path
        for method, operation in operations.items():
            assert method in ours[path], f"{method.upper()} {path}"
            theirs = [(p["name"], p["in"]) for p in operation.get("parameters", [])]
            mine = {(p["name"], p["in"]) for p in ours[path][method].get("parameters", [])}
            assert set(theirs) <= mine, f"{method.upper()} {path}: {set(theirs) - mine}"


def test_fmn3_clients_get_what_fmn3_documents(live_api: str, tokens: dict[str, str]) -> None:
    """Well-formed requests first (each operation must answer one with a 2xx that FMN 3's
    response model accepts), then generated ones, valid and invalid by FMN 3's document."""
    headers = {"Authorization": f"Bearer {tokens[USER]}"}
    operations = {(op.method.upper(), op.path): op for op in fmn3_operations()}
    assert len(operations) == sum(len(ops) for ops in FMN3["paths"].values())
    failures: list[str] = []
    answered: set[tuple[str, str]] = set()
    for method, path, make in well_formed_requests(live_api, headers):
        operation = operations[(method, "/api/v1" + path.removeprefix("/api/v1"))]
        case = make(operation)
        response = case.call(base_url=live_api, headers=headers, timeout=30)
        try:
            assert 200 <= response.status_code < 300, f"{response.status_code} {response.text}"
            check(operation, case, response)
            answered.add((method, path))
        except Exception as exc:
            failures.append(f"{operation.label} (well-formed): {exc}")
    assert set(operations) == answered or failures, set(operations) - answered

    for operation in operations.values():
        try:
            fuzz(operation, EXAMPLES, live_api, headers, USER, partial(check, operation))
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
