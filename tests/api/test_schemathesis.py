"""Schemathesis over the API's own OpenAPI document: generated requests, valid and invalid, must
never get a server error. The API runs for real (uvicorn in a thread, its own engine on a
database of its own, Redis, RabbitMQ, the real OIDC provider); requests carry an admin's token and
name that admin in user paths, so they get past authorization into the handlers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from fmn.api.app import create_app
from fmn.core.settings import Settings
from fmn.db import migrations
from fmn.directory.local import DirectoryData, LocalDirectory
from tests.api.conftest import ADMIN_GROUP, DIRECTORY
from tests.harness import services
from tests.harness.oidc import CLIENT_ID, CLIENT_SECRET, Provider
from tests.harness.ports import free_port

pytestmark = pytest.mark.slow
# Per operation; about 30 operations, so a few hundred requests in all.
EXAMPLES = 30


@pytest.fixture(scope="module")
def live_api(oidc: Provider, bus_url: str) -> Iterator[str]:
    name = f"{services.pg_database_name()}_schemathesis"
    url = services.recreate_database(name)
    migrations.upgrade(url)
    api_settings = Settings(
        database={"url": url, "pool_size": 4},
        cache={"url": services.redis_url()},
        bus={"amqp_url": bus_url},
        send_queue={"amqp_url": bus_url, "exchange": "fmn.send.schemathesis"},
        oidc={
            "provider_url": oidc.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token_check": "introspection",
            "admin_groups": [ADMIN_GROUP],
            "allowed_clients": [CLIENT_ID],
            "token_checks_per_minute": 100_000,
        },
        api={"rate_limit_per_minute": 100_000, "frontend_dir": "/nonexistent"},
    )
    directory = LocalDirectory(DirectoryData.model_validate(DIRECTORY))
    app = create_app(api_settings, directory=directory)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(15)
    services.drop_database(name)


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
