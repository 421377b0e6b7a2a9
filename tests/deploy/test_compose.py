"""deploy/compose.yaml: valid against the Compose Specification's JSON schema (the copy that
check-jsonschema ships), every fmn service runs a real `fmn` sub-command with settings that
load, and the RabbitMQ users it logs in with are those of the definitions file."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
import yaml

from fmn.sendqueue.workitem import PROTOCOLS
from tests.deploy.commands import parse_fmn
from tests.deploy.conftest import DEPLOY
from tests.deploy.settings_env import interpolated, load, setting_exists

COMPOSE = DEPLOY / "compose.yaml"
FMN_IMAGE = "${FMN_IMAGE:-localhost/fmn:latest}"
SAMPLE_DIRECTORY = "/opt/fmn/app/fmn/dev/sample-directory.json"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def fmn_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if s.get("image") == FMN_IMAGE}


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {k: interpolated(str(v)) for k, v in (service.get("environment") or {}).items()}


def compose_validator() -> jsonschema.protocols.Validator:
    schema_file = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator: jsonschema.protocols.Validator = jsonschema.validators.validator_for(schema)(schema)
    return validator


def test_valid_against_the_compose_specification() -> None:
    compose_validator().validate(compose())


def test_the_schema_refuses_a_mistake() -> None:
    broken = compose()
    broken["services"]["consumer"]["deploy"] = {"replica": 2}
    assert not compose_validator().is_valid(broken)


def test_every_part_is_there() -> None:
    services = compose()["services"]
    assert {"rabbitmq", "postgres", "redis"} <= set(services)
    commands = {name: parse_fmn(s["command"]) for name, s in fmn_services().items()}
    assert commands == {
        "db-upgrade": ["db", "upgrade"],
        "api": ["api"],
        "consumer": ["consumer"],
        "sender-email": ["sender"],
        "sender-irc": ["sender"],
        "sender-matrix": ["sender"],
        "sender-web": ["sender"],
    }
    protocols = {s["command"][1] for name, s in services.items() if name.startswith("sender-")}
    assert protocols == set(PROTOCOLS)
    assert services["consumer"]["deploy"]["replicas"] == 2
    assert services["db-upgrade"]["restart"] == "no"


def test_processes_wait_for_the_schema_upgrade() -> None:
    for name, service in fmn_services().items():
        if name == "db-upgrade":
            continue
        condition = service["depends_on"]["db-upgrade"]["condition"]
        assert condition == "service_completed_successfully", name


def test_the_directory_is_the_sample_file_in_the_image() -> None:
    containerfile = (DEPLOY / "Containerfile").read_text()
    assert "/opt/fmn/app" in containerfile
    for name, service in fmn_services().items():
        env = environment(service)
        assert env["FMN_DIRECTORY__LOCAL_FILE"] == SAMPLE_DIRECTORY, name
        assert "FMN_DIRECTORY__FASJSON_URL" not in env, name  # else the file would be ignored
    assert (DEPLOY.parent / "fmn" / "dev" / "sample-directory.json").is_file()


def test_api_health_check_asks_readiness() -> None:
    test = " ".join(compose()["services"]["api"]["healthcheck"]["test"])
    assert "/api/v1/healthz/ready" in test


@pytest.mark.parametrize("name", sorted(fmn_services()))
def test_settings_load(name: str) -> None:
    env = environment(fmn_services()[name])
    for variable in env:
        assert setting_exists(variable), variable
    load(env)


def test_rabbitmq_users_are_the_definitions_users() -> None:
    """Each fmn service logs in as a user of definitions.json, with the password the RabbitMQ
    service gives that user from the same required variable (set-passwords.sh)."""
    definitions = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())
    users = {u["name"] for u in definitions["users"]}
    vhosts = {v["name"] for v in definitions["vhosts"]}
    rabbitmq = compose()["services"]["rabbitmq"]["environment"]
    for name, service in fmn_services().items():
        for key in ("FMN_BUS__AMQP_URL", "FMN_SEND_QUEUE__AMQP_URL"):
            raw = (service.get("environment") or {}).get(key)
            if raw is None:
                continue
            parts = urlsplit(interpolated(raw))
            assert parts.username in users, (name, key)
            variable = f"FMN_RABBITMQ_{parts.username.removeprefix('fmn-').upper()}_PASSWORD"
            assert f":${{{variable}:?" in raw, (name, key, raw)
            assert rabbitmq[variable].startswith(f"${{{variable}:?"), variable
            assert unquote(parts.path[1:]) in vhosts, (name, key)


def test_no_password_in_the_files_that_a_service_would_accept() -> None:
    """Every password is a required variable: compose refuses to start without it."""
    text = COMPOSE.read_text()
    assert "change-me" not in text.lower()
    for user in json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())["users"]:
        assert "password" not in user and user["password_hash"] == "", user["name"]
    postgres = compose()["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert postgres.startswith("${FMN_POSTGRES_PASSWORD:?")
    assert (DEPLOY / "rabbitmq" / "set-passwords.sh").is_file()


def test_mounted_files_exist() -> None:
    for service in compose()["services"].values():
        for volume in service.get("volumes") or ():
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), source
    build = compose()["x-fmn-image"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()


def test_only_the_web_entry_point_is_published_to_the_network() -> None:
    published = {
        name: [str(p) for p in service.get("ports", ())]
        for name, service in compose()["services"].items()
        if service.get("ports")
    }
    assert published.pop("api") == ["8080:8080"]
    assert published, "the mail sink and RabbitMQ's management stay reachable locally"
    for name, ports in published.items():
        for port in ports:
            assert port.startswith("127.0.0.1:"), (name, port)


def test_no_signing_key_default_the_api_would_accept() -> None:
    """compose refuses to start without FMN_API__SECRET_KEY rather than giving it a value."""
    raw = compose()["x-fmn"]["environment"]["FMN_API__SECRET_KEY"]
    assert raw.startswith("${FMN_API__SECRET_KEY:?"), raw
