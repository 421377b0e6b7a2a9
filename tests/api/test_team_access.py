"""Every team endpoint times {anonymous, someone outside the group, a member, a sponsor, an
admin}: the exact status, and for every refusal, that nothing of the group's leaked into the
answer and nothing changed in the database."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.db import models
from tests.factories import make_rule, make_user

GROUP = "python-sig"
SECRET_NAME = "python-sig-private-rule"
CHANNEL = "#python-sig-secret"
ROLES = ("anonymous", "outsider", "member", "sponsor", "admin")
WHO = {
    "anonymous": None,
    "outsider": "newbie",
    "member": "alice",
    "sponsor": "bob",
    "admin": "root",
}


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # {rule}: the group's rule, {destination}: its verified channel
    expected: tuple[int, int, int, int, int]  # anonymous, outsider, member, sponsor, admin
    body: Any = None

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


READ = (401, 403, 200, 200, 200)
SPONSOR = (401, 403, 403, 200, 403)


def rule_body(name: str = "renamed") -> dict[str, Any]:
    return {
        "name": name,
        "tracking_rule": {"name": "artifacts-group-owned", "params": [GROUP]},
        "generation_rules": [
            {"destinations": [{"protocol": "irc", "address": CHANNEL}], "filters": {}}
        ],
    }


CASES = [
    Case("GET", "/groups/python-sig/rules", READ),
    Case("POST", "/groups/python-sig/rules", SPONSOR, rule_body("new")),
    Case("GET", "/groups/python-sig/rules/{rule}", READ),
    Case("PUT", "/groups/python-sig/rules/{rule}", SPONSOR, rule_body()),
    Case("PATCH", "/groups/python-sig/rules/{rule}", SPONSOR, {"disabled": True}),
    Case("DELETE", "/groups/python-sig/rules/{rule}", SPONSOR),
    Case("GET", "/groups/python-sig/destinations", READ),
    Case(
        "POST",
        "/groups/python-sig/destinations",
        (401, 403, 403, 201, 403),
        {"protocol": "email", "address": "python-sig@lists.example.org"},
    ),
    # The code was sent a moment ago (set up below): a sponsor is told to wait.
    Case("POST", "/groups/python-sig/destinations/{destination}/code", (401, 403, 403, 429, 403)),
    Case(
        "POST",
        "/groups/python-sig/destinations/{destination}/verify",
        SPONSOR,
        {"code": "AAAAAAAA"},  # verified already: any code is fine
    ),
    # In use by the rule: a sponsor is told which.
    Case("DELETE", "/groups/python-sig/destinations/{destination}", (401, 403, 403, 409, 403)),
    Case("GET", "/users/alice/teams", (401, 403, 200, 403, 403)),
]


async def snapshot(session: AsyncSession) -> str:
    session.expire_all()
    rules = await session.scalars(
        select(models.Rule).order_by(models.Rule.id).execution_options(populate_existing=True)
    )
    destinations = await session.scalars(
        select(models.TeamDestination)
        .order_by(models.TeamDestination.id)
        .execution_options(populate_existing=True)
    )
    return json.dumps(
        {
            "rules": [(r.id, r.name, r.disabled, r.muted_until) for r in rules],
            "destinations": [
                (d.id, d.address, d.verified_at, d.code_hash, d.failed_attempts)
                for d in destinations
            ],
        },
        default=str,
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_team_access(
    case: Case, role: str, client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    team = await make_user(session, f"group:{GROUP}")
    rule = await make_rule(
        session,
        team,
        name=SECRET_NAME,
        tracking="artifacts-group-owned",
        params=[GROUP],
        destinations=[("irc", CHANNEL)],
    )
    now = dt.datetime.now(dt.UTC)
    destination = models.TeamDestination(
        group_name=GROUP,
        protocol="irc",
        address=CHANNEL,
        failed_attempts=0,
        code_sent_at=now,
        verified_at=now,
        verified_by="bob",
    )
    session.add(destination)
    await session.commit()
    path = "/api/v1" + case.path.format(rule=rule.id, destination=destination.id)
    before = json.loads(await snapshot(session))

    answer = await client.request(case.method, path, headers=auth(WHO[role]), json=case.body)

    assert answer.status_code == case.expected[ROLES.index(role)], answer.text
    if answer.status_code < 400:
        return
    assert SECRET_NAME not in answer.text and CHANNEL not in answer.text
    after = json.loads(await snapshot(session))
    assert after["destinations"] == before["destinations"]
    # A refused user may have been given "My Events" by their first log-in, nothing else.
    kept, added = after["rules"][: len(before["rules"])], after["rules"][len(before["rules"]) :]
    assert kept == before["rules"]
    assert all(r[1] == "My Events" for r in added)
