"""One-click unsubscribe links: one user, one rule, one destination, for a limited time."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.core.settings import Settings
from fmn.core.signing import Unsubscribe, make_unsubscribe_token
from fmn.db import models
from fmn.rules.store import RULE_LOAD_OPTIONS
from tests.api.conftest import ALICE_EMAIL, BusListener
from tests.factories import make_rule, make_user
from tests.harness.signing import SIGNING_KEY

ALICE_IRC = "alice"
OLD_KEY = "the-key-before-rotation-0123456789abcdef"


def link(wanted: Unsubscribe, keys: list[str] | None = None) -> str:
    return f"/api/v1/unsubscribe/{make_unsubscribe_token(keys or [SIGNING_KEY], wanted)}"


async def destinations(session: AsyncSession) -> dict[int, tuple[bool, list[tuple[str, str]]]]:
    """Every rule: disabled?, and its destinations."""
    session.expire_all()
    rules = await session.scalars(
        select(models.Rule)
        .options(*RULE_LOAD_OPTIONS)
        .order_by(models.Rule.id)
        .execution_options(populate_existing=True)
    )
    return {
        r.id: (
            r.disabled,
            sorted((d.protocol, d.address) for g in r.generation_rules for d in g.destinations),
        )
        for r in rules
    }


async def test_post_stops_that_destination_of_that_rule_only(
    client: httpx.AsyncClient, session: AsyncSession, bus: BusListener
) -> None:
    alice = await make_user(session, "alice")
    both = [("email", ALICE_EMAIL), ("irc", ALICE_IRC)]
    rule = await make_rule(session, alice, name="mine", destinations=both)
    other = await make_rule(session, alice, name="other", destinations=both)
    await session.commit()
    url = link(Unsubscribe("alice", rule.id, "email", ALICE_EMAIL))
    before = await destinations(session)

    shown = await client.get(url)
    assert shown.status_code == 200
    assert shown.json() == {
        "user": "alice",
        "rules": [{"id": rule.id, "name": "mine", "disabled": False}],
        "protocol": "email",
        "address": ALICE_EMAIL,
        "done": False,
    }
    assert await destinations(session) == before  # a GET (a mail scanner) changes nothing

    done = await client.post(url, content=b"List-Unsubscribe=One-Click")
    assert done.status_code == 200 and done.json()["done"] is True
    after = await destinations(session)
    assert after[rule.id] == (False, [("irc", ALICE_IRC)])
    assert after[other.id] == before[other.id]
    assert (await bus.next()).routing_key == "org.example.test.fmn.rule.update.v1"

    assert (await client.post(url)).status_code == 200  # again: nothing more to do
    assert (await client.get(url)).json()["done"] is True
    assert await bus.nothing()


async def test_the_only_destination_disables_the_rule(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    alice = await make_user(session, "alice")
    rule = await make_rule(session, alice, destinations=[("email", ALICE_EMAIL)])
    other = await make_rule(session, alice, destinations=[("email", ALICE_EMAIL)])
    await session.commit()
    done = await client.post(link(Unsubscribe("alice", rule.id, "email", ALICE_EMAIL.upper())))
    assert done.status_code == 200
    after = await destinations(session)
    assert after[rule.id] == (True, [("email", ALICE_EMAIL)])  # kept, for turning back on
    assert after[other.id] == (False, [("email", ALICE_EMAIL)])


def _expired(wanted: Unsubscribe, monkeypatch: pytest.MonkeyPatch) -> str:
    made_at = time.time() - 181 * 86400
    with monkeypatch.context() as patch:
        patch.setattr("itsdangerous.timed.time.time", lambda: made_at)
        return link(wanted)


async def test_refused_links_change_nothing(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await make_user(session, "alice")
    rule = await make_rule(session, alice, destinations=[("email", ALICE_EMAIL)])
    bobs = await make_rule(session, await make_user(session, "bob"))
    await session.commit()
    wanted = Unsubscribe("alice", rule.id, "email", ALICE_EMAIL)
    before = await destinations(session)
    # The first format: signed with the same key, naming rules, never expiring.
    old_format = URLSafeSerializer(SIGNING_KEY, salt="fmn-unsubscribe-v1").dumps(
        {"u": "alice", "r": [rule.id]}
    )
    refused: dict[str, tuple[str, int]] = {
        "forged": (link(wanted, ["someone-elses-key-0123456789abcdefgh"]), 404),
        "garbage": ("/api/v1/unsubscribe/garbage", 404),
        "old format": (f"/api/v1/unsubscribe/{old_format}", 404),
        "expired": (_expired(wanted, monkeypatch), 410),
        "another's rule": (link(Unsubscribe("alice", bobs.id, "email", ALICE_EMAIL)), 404),
    }
    for name, (url, status) in refused.items():
        for method in ("GET", "POST"):
            response = await client.request(method, url)
            assert response.status_code == status, (name, method, response.text)
            assert response.json()["detail"], name
    assert await destinations(session) == before


async def test_links_signed_with_a_previous_key_keep_working(
    make_app: Any, api_settings: Settings, session: AsyncSession
) -> None:
    alice = await make_user(session, "alice")
    rule = await make_rule(session, alice, destinations=[("email", ALICE_EMAIL)])
    await session.commit()
    rotated = api_settings.api.model_copy(update={"secret_keys": [SIGNING_KEY, OLD_KEY]})
    app = await make_app(api_settings.model_copy(update={"api": rotated}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        url = link(Unsubscribe("alice", rule.id, "email", ALICE_EMAIL), [OLD_KEY])
        assert (await http.post(url)).status_code == 200
    assert (await destinations(session))[rule.id][0] is True
