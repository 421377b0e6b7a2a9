"""Schemathesis over the API's own OpenAPI document: generated requests, valid and invalid, must
never get a server error. The API runs for real (uvicorn in a thread, its own engine on a
database of its own, Redis, RabbitMQ, the real OIDC provider); requests carry an admin's token and
name that admin in user paths, so they get past authorization into the handlers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

pytestmark = pytest.mark.slow
# Per operation; about 30 operations, so a few hundred requests in all.
EXAMPLES = 30


def operations(base: str) -> list[Any]:
    document = httpx.get(f"{base}/api/v1/openapi.json").json()
    return [result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()]


def test_no_server_error(live_api: str, tokens: dict[str, str]) -> None:
    """Every operation, positive and negative data; all failures reported together."""
    headers = {"Authorization": f"Bearer {tokens['root']}"}
    failures: list[str] = []
    for operation in operations(live_api):

        @given(
            case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
            | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
        )
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            if "username" in (case.path_parameters or {}):
                case.path_parameters["username"] = "root"
            response = case.call(base_url=live_api, headers=headers, timeout=30)
            case.validate_response(response, checks=[schemathesis.checks.not_a_server_error])

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
