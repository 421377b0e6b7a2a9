"""The inbox API: the list (newest first, paged, filtered), counts, read state; someone else's
or an unknown entry is a 404."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.db import models
from tests.factories import make_inbox_entry, make_rule, make_user

INBOX = "/api/v1/users/alice/inbox"


async def arrange(session: AsyncSession) -> dict[str, Any]:
    alice = await make_user(session, "alice")
    bob = await make_user(session, "bob")
    packages = await make_rule(session, alice, name="My packages")
    gone = await make_rule(session, alice, name="Deleted later")
    entries = [
        await make_inbox_entry(session, alice, packages, application="koji"),
        await make_inbox_entry(session, alice, gone, application="bodhi", read=True),
        await make_inbox_entry(session, alice, packages, application="bodhi"),
    ]
    bobs = await make_inbox_entry(session, bob, application="koji")
    await session.execute(delete(models.Rule).where(models.Rule.id == gone.id))
    await session.commit()
    return {"entries": entries, "packages": packages, "gone": gone, "bobs": bobs}


async def test_the_list_is_newest_first_with_the_rules_and_counts(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    made = await arrange(session)
    response = await client.get(INBOX, headers=auth("alice"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [e["id"] for e in body] == [e.id for e in reversed(made["entries"])]
    assert response.headers["X-Unread-Count"] == "2"
    assert response.headers["X-Total-Count"] == "3"
    first = body[-1]
    oldest = made["entries"][0]
    assert first == {
        "id": oldest.id,
        "subject": oldest.subject,
        "text": oldest.text,
        "link": oldest.link,
        "application": "koji",
        "topic": oldest.topic,
        "message_id": oldest.message_id,
        "message_time": first["message_time"],
        "created_at": first["created_at"],
        "read": False,
        "rules": [{"id": made["packages"].id, "name": "My packages"}],
    }
    # A deleted rule is named by its id only.
    assert body[1]["rules"] == [{"id": made["gone"].id, "name": None}]
    count = await client.get(f"{INBOX}/count", headers=auth("alice"))
    assert count.json() == {"unread": 2, "total": 3}


async def test_pages_and_filters(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    made = await arrange(session)
    ids = [e.id for e in made["entries"]]
    page = await client.get(INBOX, params={"page": 2, "page_size": 2}, headers=auth("alice"))
    assert [e["id"] for e in page.json()] == [ids[0]]
    assert (page.headers["X-Page"], page.headers["X-Total-Count"]) == ("2", "3")
    for params, expected in (
        ({"rule_id": made["packages"].id}, [ids[2], ids[0]]),
        ({"rule_id": made["gone"].id}, [ids[1]]),
        ({"application": "bodhi"}, [ids[2], ids[1]]),
        ({"unread": "true"}, [ids[2], ids[0]]),
        ({"application": "bodhi", "unread": "true"}, [ids[2]]),
        ({"application": "nothing"}, []),
    ):
        response = await client.get(INBOX, params=params, headers=auth("alice"))
        assert [e["id"] for e in response.json()] == expected, params
        assert response.headers["X-Unread-Count"] == "2"  # the inbox's, whatever the filter
    bad = await client.get(INBOX, params={"rule_id": "x"}, headers=auth("alice"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "rule_id"]


async def test_read_and_unread(client: httpx.AsyncClient, auth: Any, session: AsyncSession) -> None:
    made = await arrange(session)
    entry = made["entries"][0]
    response = await client.patch(f"{INBOX}/{entry.id}", json={"read": True}, headers=auth("alice"))
    assert response.status_code == 200 and response.json()["read"] is True
    assert (await client.get(f"{INBOX}/count", headers=auth("alice"))).json()["unread"] == 1
    response = await client.patch(
        f"{INBOX}/{entry.id}", json={"read": False}, headers=auth("alice")
    )
    assert response.json()["read"] is False
    # Kept: a new request (as after a reload) sees it.
    listed = (await client.get(INBOX, headers=auth("alice"))).json()
    assert [e["read"] for e in listed] == [False, True, False]


async def test_unknown_or_foreign_entries_are_404_and_bad_bodies_422(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    made = await arrange(session)
    for entry_id in (made["bobs"].id, 2**31 - 1):
        response = await client.patch(
            f"{INBOX}/{entry_id}", json={"read": True}, headers=auth("alice")
        )
        assert response.status_code == 404, response.text
    entry = made["entries"][0].id
    for body, field in (({"read": "maybe"}, "read"), ({}, "read"), ({"read": True, "x": 1}, "x")):
        response = await client.patch(f"{INBOX}/{entry}", json=body, headers=auth("alice"))
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["loc"][-1] == field
    response = await client.patch(f"{INBOX}/0", json={"read": True}, headers=auth("alice"))
    assert response.status_code == 422
    # Bob's entry is unread still.
    assert (await client.get("/api/v1/users/bob/inbox", headers=auth("bob"))).json()[0][
        "read"
    ] is False


async def test_read_all_up_to_what_the_user_saw(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    made = await arrange(session)
    ids = [e.id for e in made["entries"]]
    response = await client.post(
        f"{INBOX}/read-all", json={"before_id": ids[1]}, headers=auth("alice")
    )
    assert response.json() == {"marked": 1}
    assert (await client.get(f"{INBOX}/count", headers=auth("alice"))).json()["unread"] == 1
    response = await client.post(f"{INBOX}/read-all", headers=auth("alice"))
    assert response.json() == {"marked": 1}
    assert (await client.get(f"{INBOX}/count", headers=auth("alice"))).json()["unread"] == 0
    bobs = (await client.get("/api/v1/users/bob/inbox/count", headers=auth("bob"))).json()
    assert bobs == {"unread": 1, "total": 1}
    bad = await client.post(f"{INBOX}/read-all", json={"before_id": -1}, headers=auth("alice"))
    assert bad.status_code == 422
