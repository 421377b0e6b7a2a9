"""Private Atom feeds: valid Atom (feedparser) holding the inbox's entries, each linking to its
event; conditional GET; a regenerated token ends the old URLs."""

from __future__ import annotations

from typing import Any

import feedparser
import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import make_inbox_entry, make_rule, make_user

BASE = "https://notifications.example.org/api/v1/feeds/"


def local(url: str) -> str:
    assert url.startswith(BASE), url
    return "/api/v1/feeds/" + url.removeprefix(BASE)


async def arrange(session: AsyncSession) -> dict[str, Any]:
    alice = await make_user(session, "alice")
    bob = await make_user(session, "bob")
    packages = await make_rule(session, alice, name="My packages")
    other = await make_rule(session, alice, name=None)
    bobs_rule = await make_rule(session, bob, name="Bob's")
    entries = [
        await make_inbox_entry(session, alice, packages, subject="[koji] <b>build</b> & co"),
        await make_inbox_entry(session, alice, other, application=None),
        await make_inbox_entry(session, alice, packages),
    ]
    entries[1].link = None
    await make_inbox_entry(session, bob, bobs_rule)
    await session.commit()
    return {"alice": alice, "packages": packages, "other": other, "bobs_rule": bobs_rule}


async def test_the_inbox_feed_holds_the_inbox(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    made = await arrange(session)
    links = (await client.get("/api/v1/users/alice/feeds", headers=auth("alice"))).json()
    assert [(r["id"], r["name"]) for r in links["rules"]] == [
        (made["packages"].id, "My packages"),
        (made["other"].id, ""),
    ]
    response = await client.get(local(links["inbox"]))  # no login
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    inbox = (await client.get("/api/v1/users/alice/inbox", headers=auth("alice"))).json()
    assert [e.title for e in feed.entries] == [e["subject"] for e in inbox]
    assert [e.summary for e in feed.entries] == [e["text"] for e in inbox]
    # Entries link to their event, or to the inbox when the event has no link.
    assert [e.link for e in feed.entries] == [
        e["link"] or "https://notifications.example.org/inbox" for e in inbox
    ]
    assert len({e.id for e in feed.entries}) == 3
    assert feed.feed.links[0].href == links["inbox"]


async def test_a_rule_feed_holds_the_rules_entries_only(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    made = await arrange(session)
    links = (await client.get("/api/v1/users/alice/feeds", headers=auth("alice"))).json()
    url = links["rules"][0]["url"]
    feed = feedparser.parse((await client.get(local(url))).content)
    assert not feed.bozo
    listed = await client.get(
        "/api/v1/users/alice/inbox",
        params={"rule_id": made["packages"].id},
        headers=auth("alice"),
    )
    assert [e.title for e in feed.entries] == [e["subject"] for e in listed.json()]
    assert len(feed.entries) == 2
    # Bob's rule through alice's token: no such feed.
    foreign = url.replace(
        f"/rules/{made['packages'].id}.atom", f"/rules/{made['bobs_rule'].id}.atom"
    )
    assert (await client.get(local(foreign))).status_code == 404


async def test_conditional_get(client: httpx.AsyncClient, auth: Any, session: AsyncSession) -> None:
    made = await arrange(session)
    links = (await client.get("/api/v1/users/alice/feeds", headers=auth("alice"))).json()
    path = local(links["inbox"])
    first = await client.get(path)
    tag, modified = first.headers["etag"], first.headers["last-modified"]
    assert (await client.get(path, headers={"If-None-Match": tag})).status_code == 304
    assert (await client.get(path, headers={"If-Modified-Since": modified})).status_code == 304
    assert (await client.get(path, headers={"If-None-Match": '"other"'})).status_code == 200
    # Read state is no change of the feed.
    await client.post("/api/v1/users/alice/inbox/read-all", headers=auth("alice"))
    assert (await client.get(path, headers={"If-None-Match": tag})).status_code == 304
    await make_inbox_entry(session, made["alice"], made["packages"], subject="newer")
    await session.commit()
    changed = await client.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert feedparser.parse(changed.content).entries[0].title == "newer"


async def test_a_regenerated_token_ends_the_old_urls(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    await arrange(session)
    old = (await client.get("/api/v1/users/alice/feeds", headers=auth("alice"))).json()
    again = (await client.get("/api/v1/users/alice/feeds", headers=auth("alice"))).json()
    assert again == old
    new = (await client.post("/api/v1/users/alice/feeds/regenerate", headers=auth("alice"))).json()
    assert new["inbox"] != old["inbox"]
    for url in (old["inbox"], old["rules"][0]["url"]):
        assert (await client.get(local(url))).status_code == 404
    assert (await client.get(local(new["inbox"]))).status_code == 200
    assert (await client.get("/api/v1/feeds/" + "x" * 43 + "/inbox.atom")).status_code == 404
