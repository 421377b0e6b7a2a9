"""fmn's own tracking rules through the API: created and listed to the clients that ask for
them (FMN 3.4's models read every list), refused with a 422 naming the field, previewed with
the expected notifications a day, and the rule editor's pickers."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.api.archive import archive, koji_build
from tests.api.conftest import rule_body
from tests.api.test_fmn3_contract import DOCUMENT
from tests.conftest import CORPUS_DIR

API = "/api/v1/users/alice/rules"
NOW = dt.datetime.now(dt.UTC)
NEW_KINDS = [
    {"name": "applications", "params": ["ansible", "Koji"]},
    {"name": "topics", "params": ["org.fedoraproject.prod.bodhi.compose.*"]},
    {"name": "projects-followed", "params": [{"forge": "pagure.io", "name": "fesco"}]},
]


def fmn3_rules_list_validator() -> jsonschema.protocols.Validator:
    """FMN 3.4's response model of a rules list, as its OpenAPI document has it."""
    document = json.loads(DOCUMENT.read_text())
    schema = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Rule"},
        "components": document["components"],
    }
    return jsonschema.Draft202012Validator(schema)


async def test_new_kinds_are_listed_only_to_clients_that_ask(
    client: httpx.AsyncClient, auth: Any
) -> None:
    headers = auth("alice")
    fmn3 = await client.post(API, headers=headers, json=rule_body(name="mine"))
    assert fmn3.status_code == 200, fmn3.text
    for tracking in NEW_KINDS:
        created = await client.post(
            API, headers=headers, json=rule_body(name=tracking["name"], tracking=tracking)
        )
        assert created.status_code == 200, created.text
        assert created.json()["tracking_rule"] == tracking

    listed = await client.get(API, headers=headers)
    assert listed.status_code == 200
    assert [r["name"] for r in listed.json()] == ["My Events", "mine"]
    assert listed.headers["x-total-count"] == "2"
    fmn3_rules_list_validator().validate(listed.json())  # what FMN 3's web app parses

    everything = await client.get(API, headers=headers, params={"all_kinds": "true"})
    assert [r["name"] for r in everything.json()] == [
        "My Events",
        "mine",
        "applications",
        "topics",
        "projects-followed",
    ]
    assert everything.headers["x-total-count"] == "5"
    with pytest.raises(jsonschema.ValidationError):
        fmn3_rules_list_validator().validate(everything.json())

    admin = await client.get("/api/v1/admin/rules", headers=auth("root"))
    fmn3_rules_list_validator().validate(admin.json())
    admin_all = await client.get(
        "/api/v1/admin/rules", headers=auth("root"), params={"all_kinds": "true"}
    )
    assert {"topics", "applications", "projects-followed"} <= {
        r["tracking_rule"]["name"] for r in admin_all.json()
    }


@pytest.mark.parametrize(
    ("tracking", "field"),
    [
        ({"name": "applications", "params": ["koji", "no-such-app"]}, ["params", 1]),
        ({"name": "applications", "params": []}, ["applications", "params"]),
        ({"name": "topics", "params": []}, ["topics", "params"]),
        ({"name": "projects-followed", "params": []}, ["projects-followed", "params"]),
        (
            {"name": "projects-followed", "params": [{"forge": "gitlab.com", "name": "x"}]},
            ["projects-followed", "params", 0, "forge"],
        ),
        ({"name": "topics", "params": ["bodhi.*", "*"]}, ["params", 1]),
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_nothing_stored(
    client: httpx.AsyncClient, auth: Any, tracking: dict[str, Any], field: list[Any]
) -> None:
    headers = auth("alice")
    response = await client.post(API, headers=headers, json=rule_body(tracking=tracking))
    assert response.status_code == 422, response.text
    locations = [e["loc"] for e in response.json()["detail"]]
    assert ["body", "tracking_rule", *field] in locations, locations
    listed = await client.get(API, headers=headers, params={"all_kinds": "true"})
    assert [r["tracking_rule"]["name"] for r in listed.json()] == ["related-events"]  # My Events


async def test_a_catch_all_pattern_needs_a_digest_for_email_and_irc(
    client: httpx.AsyncClient, auth: Any
) -> None:
    headers = auth("alice")
    body = rule_body(tracking={"name": "topics", "params": ["*"]})
    assert (await client.post(API, headers=headers, json=body)).status_code == 422
    # Replacing a rule is checked the same way.
    created = await client.post(
        API, headers=headers, json=rule_body(tracking={"name": "topics", "params": ["koji.*"]})
    )
    rule = created.json()
    rule["tracking_rule"]["params"] = ["**"]
    replaced = await client.put(f"{API}/{rule['id']}", headers=headers, json=rule)
    assert replaced.status_code == 422
    assert replaced.json()["detail"][0]["loc"] == ["body", "tracking_rule", "params", 0]
    assert "digest" in replaced.json()["detail"][0]["msg"]

    settings = await client.put(
        "/api/v1/users/alice/settings", headers=headers, json={"digest_mode": "daily"}
    )
    assert settings.status_code == 200, settings.text
    assert (await client.post(API, headers=headers, json=body)).status_code == 200


async def test_a_catch_all_pattern_to_matrix_needs_no_digest(
    client: httpx.AsyncClient, auth: Any
) -> None:
    body = rule_body(tracking={"name": "topics", "params": ["*"]})
    body["generation_rules"][0]["destinations"] = [
        {"protocol": "matrix", "address": "@alice:matrix.org"}
    ]
    response = await client.post(API, headers=auth("alice"), json=body)
    assert response.status_code == 200, response.text


def corpus_message(filename: str, topic: str, sent_at: dt.datetime, on_topic: str) -> Any:
    """The first message of `topic` in a corpus file, sent at `sent_at` on the bus topic
    `on_topic` (production prefixes the schema's topic)."""
    for line in (CORPUS_DIR / filename).read_text().splitlines():
        data = json.loads(line)
        if data["topic"] == topic:
            message = copy.deepcopy(data)
            message.update(id=str(uuid.uuid4()), topic=on_topic)
            message["headers"] = {**message["headers"], "sent-at": sent_at.isoformat()}
            return message
    raise LookupError(topic)


@pytest.fixture
async def archived(session: AsyncSession) -> None:
    playbooks = [
        corpus_message(
            "schema-tests-fedorainfra-ansible-messages.jsonl",
            "ansible.playbook.complete",
            NOW - dt.timedelta(minutes=15 * i),
            on_topic="org.fedoraproject.prod.ansible.playbook.complete",
        )
        for i in range(1, 201)  # 200 in the last 2 days
    ]
    issues = [
        corpus_message(
            "schema-tests-pagure-messages.jsonl",
            "pagure.issue.new",
            NOW - dt.timedelta(days=i),
            on_topic="io.pagure.prod.pagure.issue.new",
        )
        for i in range(1, 4)
    ]
    builds = [koji_build("bob", "foo", NOW - dt.timedelta(hours=2))]
    await archive(session, [*playbooks, *issues, *builds])


def preview_of(tracking: dict[str, Any]) -> dict[str, Any]:
    return {"rule": rule_body(tracking=tracking), "days": 7}


async def test_preview_expects_notifications_a_day_and_suggests_a_digest(
    client: httpx.AsyncClient, auth: Any, archived: None
) -> None:
    url = f"{API}/preview"
    broad = await client.post(
        url, headers=auth("alice"), json=preview_of({"name": "applications", "params": ["ansible"]})
    )
    assert broad.status_code == 200, broad.text
    result = broad.json()
    assert result["total"] == 200 and result["complete"] is True
    # 200 over the 3 days the archive holds (not the 7 asked: the archive is younger).
    assert 60 < result["expected_per_day"] < 72
    assert result["digest_suggested"] is True  # above the default 20 a day

    topics = await client.post(
        url,
        headers=auth("alice"),
        json=preview_of({"name": "topics", "params": ["org.fedoraproject.*.ansible.*"]}),
    )
    assert topics.json()["total"] == 200

    narrow = await client.post(
        url,
        headers=auth("alice"),
        json=preview_of(
            {
                "name": "projects-followed",
                "params": [{"forge": "pagure.io", "name": "fedora-infra/fedocal-messages"}],
            }
        ),
    )
    result = narrow.json()
    assert result["total"] == 3
    assert result["notifications"][0]["message"]["topic"] == "io.pagure.prod.pagure.issue.new"
    assert result["digest_suggested"] is False


async def test_a_user_with_a_digest_is_not_told_to_choose_one(
    client: httpx.AsyncClient, auth: Any, archived: None
) -> None:
    headers = auth("alice")
    await client.put(
        "/api/v1/users/alice/settings", headers=headers, json={"digest_mode": "hourly"}
    )
    result = await client.post(
        f"{API}/preview",
        headers=headers,
        json=preview_of({"name": "applications", "params": ["ansible"]}),
    )
    assert result.json()["total"] == 200 and result.json()["digest_suggested"] is False


async def test_topic_pattern_counts_for_the_picker(
    client: httpx.AsyncClient, auth: Any, archived: None
) -> None:
    counted = await client.get(
        "/api/v1/topics", headers=auth("alice"), params={"pattern": "org.fedoraproject.*"}
    )
    assert counted.status_code == 200, counted.text
    result = counted.json()
    assert result["messages"] == 201
    assert result["topics"][0] == {
        "topic": "org.fedoraproject.prod.ansible.playbook.complete",
        "count": 200,
    }
    everything = await client.get("/api/v1/topics", headers=auth("alice"), params={"pattern": "*"})
    assert everything.json()["messages"] == 204
    for bad_pattern in ("", "two words"):
        bad = await client.get(
            "/api/v1/topics", headers=auth("alice"), params={"pattern": bad_pattern}
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["query", "pattern"]


async def test_forges_and_their_projects_for_the_picker(
    client: httpx.AsyncClient, auth: Any, archived: None
) -> None:
    assert (await client.get("/api/v1/forges")).json() == ["pagure.io"]
    found = await client.get(
        "/api/v1/forges/pagure.io/projects", headers=auth("alice"), params={"name": "FEDOCAL"}
    )
    assert found.json() == ["fedora-infra/fedocal-messages"]
    nothing = await client.get(
        "/api/v1/forges/pagure.io/projects", headers=auth("alice"), params={"name": "io"}
    )
    assert nothing.json() == []
    unknown = await client.get("/api/v1/forges/gitlab.com/projects", headers=auth("alice"))
    assert unknown.status_code == 404
