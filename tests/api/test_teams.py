"""Team rules (FMN #179) through the API: a group's sponsor adds a destination, reads the code
fmn sent there off the real send queue, verifies it, and only then may a team rule deliver to
it; members read, others are refused (the access matrix is in test_team_access.py); FMN 3's
clients see nothing of it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import httpx
import jsonschema
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.core.settings import Settings
from fmn.db import models
from fmn.sendqueue.topology import send_queue
from fmn.sendqueue.workitem import WorkItem, unpack

GROUP = "python-sig"  # bob sponsors it, alice is a member (tests/api/conftest.py)
CHANNEL = "#python-sig"
FMN3 = json.loads(
    (Path(__file__).resolve().parent.parent / "contract" / "fmn3-openapi.json").read_text()
)


async def sent_codes(settings: Settings, protocol: str, address: str) -> list[str]:
    """The verification codes waiting on the real send queue for this address (taken off it)."""
    connection = await aio_pika.connect(settings.send_queue.amqp_url)
    codes: list[str] = []
    async with connection:
        channel = await connection.channel()
        try:
            queue = await channel.get_queue(send_queue(settings.send_queue.exchange, protocol))
        except aiormq.exceptions.ChannelNotFoundEntity:
            return []  # nothing was ever sent: the API declares the queues on its first code
        while (message := await queue.get(fail=False, timeout=5)) is not None:
            await message.ack()
            for raw in unpack(message.body):
                item = WorkItem.from_bytes(raw)
                text = item.email.text if item.email else item.chat.text if item.chat else ""
                found = re.search(r"\b([A-Z2-9]{8})\b", text)
                if item.address == address and found:
                    codes.append(found.group(1))
    return codes


def team_rule(address: str, protocol: str = "irc", name: str = "team rule") -> dict[str, Any]:
    return {
        "name": name,
        "tracking_rule": {"name": "artifacts-group-owned", "params": [GROUP]},
        "generation_rules": [
            {"destinations": [{"protocol": protocol, "address": address}], "filters": {}}
        ],
    }


async def add_verified(
    client: httpx.AsyncClient, auth: Any, settings: Settings, protocol: str, address: str
) -> dict[str, Any]:
    added = await client.post(
        f"/api/v1/groups/{GROUP}/destinations",
        headers=auth("bob"),
        json={"protocol": protocol, "address": address},
    )
    assert added.status_code == 201, added.text
    (code,) = await sent_codes(settings, protocol, address)
    verified = await client.post(
        f"/api/v1/groups/{GROUP}/destinations/{added.json()['id']}/verify",
        headers=auth("bob"),
        json={"code": code.lower()},  # as typed: case does not matter
    )
    assert verified.status_code == 200, verified.text
    result: dict[str, Any] = verified.json()
    return result


async def test_a_team_rule_waits_for_its_destination_to_be_verified(
    client: httpx.AsyncClient, auth: Any, api_settings: Settings, session: AsyncSession
) -> None:
    await sent_codes(api_settings, "irc", CHANNEL)  # what earlier tests left
    base = f"/api/v1/groups/{GROUP}"
    added = await client.post(
        f"{base}/destinations", headers=auth("bob"), json={"protocol": "irc", "address": CHANNEL}
    )
    assert added.status_code == 201, added.text
    assert added.json()["verified"] is False
    destination = added.json()["id"]

    refused = await client.post(f"{base}/rules", headers=auth("bob"), json=team_rule(CHANNEL))
    assert refused.status_code == 422
    (error,) = refused.json()["detail"]
    assert error["loc"] == ["body", "generation_rules", 0, "destinations", 0, "address"]
    assert "not a verified irc destination" in error["msg"]
    assert (
        await session.scalar(
            select(models.Rule.id)
            .join(models.Rule.user)
            .where(models.User.name == f"group:{GROUP}")
        )
        is None
    )

    (code,) = await sent_codes(api_settings, "irc", CHANNEL)
    wrong = await client.post(
        f"{base}/destinations/{destination}/verify", headers=auth("bob"), json={"code": "AAAAAAAA"}
    )
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", "code"]
    by_member = await client.post(
        f"{base}/destinations/{destination}/verify", headers=auth("alice"), json={"code": code}
    )
    assert by_member.status_code == 403
    right = await client.post(
        f"{base}/destinations/{destination}/verify",
        headers=auth("bob"),
        json={"code": f"{code[:4]}-{code[4:]}"},
    )
    assert right.status_code == 200, right.text
    assert right.json()["verified"] is True
    assert right.json()["verified_by"] == "bob"

    created = await client.post(f"{base}/rules", headers=auth("bob"), json=team_rule(CHANNEL))
    assert created.status_code == 200, created.text
    rule = created.json()
    assert rule["user"]["name"] == f"group:{GROUP}"

    # Members see it, read-only; the sponsor's and the member's own lists do not carry it.
    seen = await client.get(f"{base}/rules", headers=auth("alice"))
    assert [r["id"] for r in seen.json()] == [rule["id"]]
    edit = await client.put(
        f"{base}/rules/{rule['id']}", headers=auth("alice"), json=team_rule(CHANNEL, name="x")
    )
    assert edit.status_code == 403
    for user in ("alice", "bob"):
        own = await client.get(f"/api/v1/users/{user}/rules", headers=auth(user))
        assert rule["id"] not in [r["id"] for r in own.json()]
        # What FMN 3's clients get still parses with FMN 3.4's response models.
        jsonschema.validate(own.json(), FMN3_RULES)
    jsonschema.validate(seen.json(), FMN3_RULES)

    # A destination a rule uses is not removed under it.
    removed = await client.delete(f"{base}/destinations/{destination}", headers=auth("bob"))
    assert removed.status_code == 409
    deleted = await client.delete(f"{base}/rules/{rule['id']}", headers=auth("bob"))
    assert deleted.status_code == 200
    removed = await client.delete(f"{base}/destinations/{destination}", headers=auth("bob"))
    assert removed.status_code == 200


# FMN 3.4's response model of a rules list, with the components it refers to.
FMN3_RULES = {
    "type": "array",
    "items": {"$ref": "#/components/schemas/Rule"},
    "components": FMN3["components"],
}


@pytest.mark.parametrize(
    ("protocol", "address"),
    [
        ("irc", "bob"),  # a person's nick, not a channel
        ("irc", "#with space"),
        ("matrix", "@bob:example.org"),  # a person, not a room
        ("email", "not-an-address"),
    ],
)
async def test_a_team_destination_must_be_a_list_channel_or_room(
    client: httpx.AsyncClient, auth: Any, protocol: str, address: str, session: AsyncSession
) -> None:
    response = await client.post(
        f"/api/v1/groups/{GROUP}/destinations",
        headers=auth("bob"),
        json={"protocol": protocol, "address": address},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "address"]
    assert await session.scalar(select(models.TeamDestination.id)) is None


async def test_a_team_rule_delivers_only_to_its_own_groups_destinations(
    client: httpx.AsyncClient, auth: Any, api_settings: Settings
) -> None:
    """A user's own address, or another group's verified channel, is no destination of it."""
    await sent_codes(api_settings, "email", "python-sig@lists.example.org")
    await add_verified(client, auth, api_settings, "email", "python-sig@lists.example.org")
    own_address = await client.post(
        f"/api/v1/groups/{GROUP}/rules",
        headers=auth("bob"),
        json=team_rule("bob@example.org", "email"),
    )
    assert own_address.status_code == 422
    related = {**team_rule("python-sig@lists.example.org", "email")}
    related["tracking_rule"] = {"name": "related-events", "params": None}
    refused = await client.post(f"/api/v1/groups/{GROUP}/rules", headers=auth("bob"), json=related)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "tracking_rule", "name"]
    listed = await client.post(
        f"/api/v1/groups/{GROUP}/rules",
        headers=auth("bob"),
        json=team_rule("Python-SIG@lists.example.org", "email"),
    )
    assert listed.status_code == 200, listed.text


async def test_codes_are_sent_at_most_once_a_minute(
    client: httpx.AsyncClient, auth: Any, api_settings: Settings
) -> None:
    await sent_codes(api_settings, "matrix", "#python:example.org")
    added = await client.post(
        f"/api/v1/groups/{GROUP}/destinations",
        headers=auth("bob"),
        json={"protocol": "matrix", "address": "#python:example.org"},
    )
    again = await client.post(
        f"/api/v1/groups/{GROUP}/destinations/{added.json()['id']}/code", headers=auth("bob")
    )
    assert again.status_code == 429
    assert len(await sent_codes(api_settings, "matrix", "#python:example.org")) == 1


async def test_the_teams_of_a_user(client: httpx.AsyncClient, auth: Any) -> None:
    bob = await client.get("/api/v1/users/bob/teams", headers=auth("bob"))
    assert {"group": GROUP, "sponsor": True} in bob.json()
    alice = await client.get("/api/v1/users/alice/teams", headers=auth("alice"))
    assert {"group": GROUP, "sponsor": False} in alice.json()
