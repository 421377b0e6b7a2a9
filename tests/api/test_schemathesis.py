"""Schemathesis over the API's own OpenAPI document: generated requests, valid and invalid, must
never get a server error. The API runs for real (uvicorn in a thread, its own engine on a
database of its own, Redis, RabbitMQ, the real OIDC provider); requests carry an admin's token and
name that admin in user paths, so they get past authorization into the handlers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis

from tests.api.fuzz import fuzz

pytestmark = pytest.mark.slow
# Per operation; about 30 operations, so a few hundred requests in all.
EXAMPLES = 30


def operations(base: str) -> list[Any]:
    document = httpx.get(f"{base}/api/v1/openapi.json").json()
    return [result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()]


def no_server_error(case: Any, response: Any) -> None:
    case.validate_response(response, checks=[schemathesis.checks.not_a_server_error])


def test_no_server_error(live_api: str, tokens: dict[str, str]) -> None:
    """Every operation, positive and negative data; all failures reported together."""
    headers = {"Authorization": f"Bearer {tokens['root']}"}
    failures: list[str] = []
    for operation in operations(live_api):
        if operation.path.endswith("/inbox/stream"):
            # An open stream never ends, so a generated request would wait for ever: its
            # answers are checked in tests/api/test_inbox_stream.py and the access matrix.
            continue
        try:
            fuzz(operation, EXAMPLES, live_api, headers, "root", no_server_error)
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
