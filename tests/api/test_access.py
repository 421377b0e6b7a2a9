"""Every endpoint times {anonymous, another user, the owner, an admin}: the exact status, and for
every refusal, that nothing leaked into the answer and nothing changed in the database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.core.signing import Unsubscribe, make_unsubscribe_token
from fmn.db import models
from tests.api.conftest import ALICE_EMAIL, rule_body
from tests.api.streams import first_answer
from tests.api.test_team_access import CASES as TEAM_CASES
from tests.factories import make_inbox_entry, make_push_subscription, make_rule, make_user

SECRET_NAME = "alice-private-rule"
ROLES = ("anonymous", "other", "owner", "admin")
WHO = {"anonymous": None, "other": "bob", "owner": "alice", "admin": "root"}


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # {rule} is alice's rule id, {token} an unsubscribe token for it, {entry} an
    # entry of her inbox, {push} a push subscription of hers
    expected: tuple[int, int, int, int]  # anonymous, other, owner, admin
    body: Any = None

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


SELF = (401, 403, 200, 403)  # alice's own data: FMN 3 refuses even admins (403)
LOGIN = (401, 200, 200, 200)
OWNER_OR_ADMIN = (401, 403, 200, 200)
ADMIN = (401, 403, 403, 200)
OPEN = (200, 200, 200, 200)
PREVIEW = {"rule": rule_body(), "days": 2}
PUSH_SUBSCRIPTION = {
    "endpoint": "https://push.example.org/send/new",
    "keys": {"p256dh": "BN" + "A" * 85, "auth": "A" * 22},
    "device": "Firefox on Linux",
}
SETTINGS = {"digest_mode": "daily", "quiet_hours": None, "timezone": "UTC", "muted_until": None}

CASES = [
    Case("GET", "/users/me", LOGIN),
    Case("GET", "/users?search=ali", LOGIN),
    Case("GET", "/users/alice/info", OWNER_OR_ADMIN),
    Case("GET", "/users/alice/groups", LOGIN),
    Case("GET", "/users/alice/destinations", OWNER_OR_ADMIN),
    Case("GET", "/users/alice/rules", SELF),
    Case("POST", "/users/alice/rules", SELF, rule_body()),
    Case("GET", "/users/alice/rules/{rule}", SELF),
    Case("PUT", "/users/alice/rules/{rule}", SELF, rule_body(name="renamed")),
    Case("PATCH", "/users/alice/rules/{rule}", SELF, {"disabled": True}),
    Case("DELETE", "/users/alice/rules/{rule}", SELF),
    Case("GET", "/users/alice/rules/{rule}/stats", SELF),
    Case("POST", "/users/alice/rules/preview", SELF, PREVIEW),
    Case("GET", "/users/alice/settings", SELF),
    Case("PUT", "/users/alice/settings", SELF, SETTINGS),
    Case("GET", "/users/alice/notifications", SELF),
    Case("GET", "/users/alice/inbox", SELF),
    Case("GET", "/users/alice/inbox/count", SELF),
    Case("PATCH", "/users/alice/inbox/{entry}", SELF, {"read": True}),
    Case("POST", "/users/alice/inbox/read-all", SELF, {}),
    Case("GET", "/users/alice/inbox/stream", SELF),
    Case("GET", "/push/vapid-public-key", OPEN),
    Case("GET", "/users/alice/push-subscriptions", SELF),
    Case("POST", "/users/alice/push-subscriptions", (401, 403, 201, 403), PUSH_SUBSCRIPTION),
    Case("DELETE", "/users/alice/push-subscriptions/{push}", (401, 403, 204, 403)),
    Case("GET", "/users/alice/feeds", SELF),
    Case("POST", "/users/alice/feeds/regenerate", SELF),
    Case("GET", "/feeds/{feed}/inbox.atom", OPEN),
    Case("GET", "/feeds/{feed}/rules/{rule}.atom", OPEN),
    Case("GET", "/applications", LOGIN),
    Case("GET", "/artifacts?names=*foo*&users=alice", LOGIN),
    Case("GET", "/config", OPEN),
    Case("GET", "/topics?pattern=org.fedoraproject.*", LOGIN),
    Case("GET", "/forges", OPEN),
    Case("GET", "/forges/pagure.io/projects?name=fmn", LOGIN),
    Case("GET", "/healthz/live", OPEN),
    Case("GET", "/healthz/ready", OPEN),
    Case("GET", "/unsubscribe/{token}", OPEN),
    Case("POST", "/unsubscribe/{token}", OPEN),
    Case("GET", "/admin/rules", ADMIN),
    Case("GET", "/admin/users?search=al", ADMIN),
    Case("PATCH", "/admin/rules/{rule}", ADMIN, {"disabled": True}),
    Case("GET", "/admin/deadletters", ADMIN),
    Case("POST", "/admin/deadletters/nope/replay", (401, 403, 403, 404)),
    Case("DELETE", "/admin/deadletters/nope", (401, 403, 403, 404)),
    Case("GET", "/admin/status", ADMIN),
]


async def snapshot(session: AsyncSession) -> str:
    """Everything a request could change, as text."""
    session.expire_all()
    rules = await session.scalars(
        select(models.Rule).order_by(models.Rule.id).execution_options(populate_existing=True)
    )
    users = await session.scalars(select(models.User.name).order_by(models.User.name))
    settings = await session.scalars(select(models.UserSettings))
    inbox = await session.execute(
        select(models.InboxEntry.id, models.InboxEntry.read).order_by(models.InboxEntry.id)
    )
    pushes = await session.scalars(
        select(models.PushSubscription.endpoint).order_by(models.PushSubscription.id)
    )
    return json.dumps(
        {
            "users": list(users),
            "rules": [(r.id, r.name, r.disabled, r.muted_until) for r in rules],
            "settings": [(s.user_id, s.digest_mode) for s in settings],
            "inbox": [list(row) for row in inbox],
            "push": list(pushes),
        },
        default=str,
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_access(
    case: Case,
    role: str,
    client: httpx.AsyncClient,
    auth: Any,
    session: AsyncSession,
    api_settings: Any,
    app: Any,
) -> None:
    alice = await make_user(session, "alice")
    await make_user(session, "bob")
    rule = await make_rule(session, alice, name=SECRET_NAME, destinations=[("email", ALICE_EMAIL)])
    await session.commit()
    entry = await make_inbox_entry(session, alice, rule, subject=SECRET_NAME)
    push = await make_push_subscription(session, alice)
    feed = "f" * 43
    session.add(models.FeedToken(user_id=alice.id, token=feed, created_at=entry.created_at))
    await session.commit()
    token = make_unsubscribe_token(
        api_settings.api.secret_keys, Unsubscribe("alice", rule.id, "email", ALICE_EMAIL)
    )
    path = "/api/v1" + case.path.format(
        rule=rule.id, token=token, entry=entry.id, push=push.id, feed=feed
    )
    before = await snapshot(session)

    if path.endswith("/stream"):
        response = await first_answer(app, path, auth(WHO[role]))
    else:
        response = await client.request(case.method, path, headers=auth(WHO[role]), json=case.body)

    expected = case.expected[ROLES.index(role)]
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert SECRET_NAME not in response.text
        assert ALICE_EMAIL not in response.text
        after = await snapshot(session)
        if WHO[role] is not None:
            # A refused user may have been created by their own first login, nothing else.
            before_data, after_data = json.loads(before), json.loads(after)
            assert after_data["rules"][: len(before_data["rules"])] == before_data["rules"]
            assert {tuple(r) for r in after_data["rules"]} - {
                tuple(r) for r in before_data["rules"]
            } <= {tuple(r) for r in after_data["rules"] if r[1] == "My Events"}
            assert after_data["settings"] == before_data["settings"]
        else:
            assert after == before


def test_every_route_is_in_the_matrix(app: Any) -> None:
    """A new endpoint must be added to CASES."""
    covered = {(c.method, c.path.split("?")[0]) for c in [*CASES, *TEAM_CASES]}
    routes = {
        (method, route.path.removeprefix("/api/v1"))
        for route in app.routes
        if getattr(route, "include_in_schema", False)
        for method in getattr(route, "methods", ())
    }
    normalized = {
        (m, p.replace("{username}", "alice").replace("{id}", "{rule}")) for m, p in routes
    }
    normalized = {
        (
            m,
            p.replace("{letter_id}", "nope")
            .replace("{entry_id}", "{entry}")
            .replace("{subscription_id}", "{push}")
            .replace("{feed_token}", "{feed}")
            .replace("{rule_id}", "{rule}")
            .replace("{group}", "python-sig")
            .replace("{destination_id}", "{destination}")
            .replace("{forge}", "pagure.io"),
        )
        for m, p in normalized
    }
    assert normalized <= covered, sorted(normalized - covered)
