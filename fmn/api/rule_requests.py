"""Rule requests for the routes: reading and writing rules, checking request bodies (account
names, destinations, the rule count), and answering what fails as the API's HTTP errors (404,
422 naming the field)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from fmn.api.applications import unknown_applications
from fmn.api.destinations import user_destinations
from fmn.api.pagination import Page
from fmn.api.schemas import RulePatch, RulePublic
from fmn.api.services import Services
from fmn.core.settings import Settings
from fmn.db import models
from fmn.directory import names
from fmn.directory.base import Directory
from fmn.rules import schema
from fmn.rules.store import RULE_LOAD_OPTIONS, apply_to_model, get_or_create_user, read_rules


def rules_query() -> Select[Any]:
    """Rules as ORM objects to change (readers use fmn.rules.store.read_rules). Like the
    reader, a row without a tracking rule is no rule."""
    return (
        select(models.Rule)
        .join(models.Rule.tracking_rule)
        .options(*RULE_LOAD_OPTIONS)
        .order_by(models.Rule.id)
    )


def user_rules_query(username: str) -> Select[Any]:
    return rules_query().join(models.Rule.user).where(models.User.name == username)


async def read_public(session: AsyncSession, rule_id: int) -> RulePublic:
    """A rule as the API answers it, read afresh (after a change)."""
    read = await read_rules(session, rule_id=rule_id)
    return RulePublic.of(read.rules[0])


async def rules_page(
    services: Services, owner: str, page: Page, *, fmn3_only: bool = False
) -> Response:
    """One page of an owner's rules list, as JSON from the list's cache; `fmn3_only`: of the
    rules whose tracking rule FMN 3 has."""
    found = await services.rule_pages.get(owner, page.offset, page.limit, fmn3_only=fmn3_only)
    response = Response(found.body, media_type="application/json")
    page.headers(response, found.total)
    return response


async def get_rule(session: AsyncSession, username: str, rule_id: int) -> models.Rule:
    rule = await session.scalar(user_rules_query(username).where(models.Rule.id == rule_id))
    if rule is None:
        raise HTTPException(404, f"No rule {rule_id} for {username}")
    return rule


def check_account_names(rule: schema.RuleBase, loc: tuple[str, ...] = ("body",)) -> None:
    """The usernames and group names a tracking rule lists must be names the account system
    can have: anything else is refused before it reaches the directory."""
    tracking = rule.tracking_rule
    if not isinstance(
        tracking, schema.ArtifactsOwned | schema.ArtifactsGroupOwned | schema.UsersFollowed
    ):
        return
    kind = "group name" if isinstance(tracking, schema.ArtifactsGroupOwned) else "username"
    errors = [
        {
            "type": "value_error",
            "loc": (*loc, "tracking_rule", "params", i),
            "msg": f"{name!r} is not a valid {kind}: {names.RULE}",
            "input": name,
        }
        for i, name in enumerate(tracking.params)
        if not names.is_account_name(name)
    ]
    if errors:
        raise RequestValidationError(errors)


async def digest_mode(session: AsyncSession, username: str) -> models.DigestMode:
    """The user's digest setting (none until they choose one)."""
    mode = await session.scalar(
        select(models.UserSettings.digest_mode)
        .join(models.UserSettings.user)
        .where(models.User.name == username)
    )
    return mode or models.DigestMode.NONE


# Destinations a catch-all topics rule would flood without a digest (a Matrix room scrolls).
FLOODABLE_PROTOCOLS = frozenset({"email", "irc"})


async def check_reach(
    session: AsyncSession, username: str, rule: schema.RuleBase, loc: tuple[str, ...] = ("body",)
) -> None:
    """fmn's own tracking rules: applications must be known ones (`/applications`), and a
    pattern matching every topic needs a digest to go to an email address or an IRC nick."""
    tracking = rule.tracking_rule
    errors: list[dict[str, Any]] = []
    if isinstance(tracking, schema.Applications):
        unknown = await run_in_threadpool(unknown_applications, tracking.params)
        errors = [
            {
                "type": "value_error",
                "loc": (*loc, "tracking_rule", "params", i),
                "msg": f"unknown application {tracking.params[i]!r} (see /applications)",
                "input": tracking.params[i],
            }
            for i in unknown
        ]
    elif isinstance(tracking, schema.Topics):
        catch_all = [i for i, p in enumerate(tracking.params) if schema.matches_every_topic(p)]
        floods = any(
            d.protocol in FLOODABLE_PROTOCOLS
            for gr in rule.generation_rules
            for d in gr.destinations
        )
        if catch_all and floods and await digest_mode(session, username) == models.DigestMode.NONE:
            errors = [
                {
                    "type": "value_error",
                    "loc": (*loc, "tracking_rule", "params", i),
                    "msg": f"{tracking.params[i]!r} matches every topic: to send that by email "
                    "or IRC, choose a digest in your settings first",
                    "input": tracking.params[i],
                }
                for i in catch_all
            ]
    if errors:
        raise RequestValidationError(errors)


async def check_destinations(
    directory: Directory, username: str, rule: schema.RuleBase, settings: Settings
) -> None:
    """Every destination must be one of the user's own addresses in the directory (FMN 3 only
    checked this in its web app)."""
    allowed = {
        (d.protocol, d.address.lower() if d.protocol == "email" else d.address)
        for d in user_destinations(
            username, await directory.get_user(username), settings.directory.default_matrix_server
        )
    }
    errors = []
    for i, generation_rule in enumerate(rule.generation_rules):
        for j, d in enumerate(generation_rule.destinations):
            address = d.address.lower() if d.protocol == "email" else d.address
            if (d.protocol, address) not in allowed:
                errors.append(
                    {
                        "type": "value_error",
                        "loc": ("body", "generation_rules", i, "destinations", j, "address"),
                        "msg": f"{d.address} is not one of your {d.protocol} addresses",
                        "input": d.address,
                    }
                )
    if errors:
        raise RequestValidationError(errors)


async def check_rule_count(session: AsyncSession, user: models.User, limit: int) -> None:
    """Refuse a new rule beyond `limit`. The user's row is written first, which holds it (and
    on SQLite the database) until the creating transaction ends: concurrent creations for one
    user count one after another, each seeing the rules committed before it."""
    await session.execute(
        update(models.User)
        .where(models.User.id == user.id)
        .values(id=models.User.id)
        .execution_options(synchronize_session=False)
    )
    count = await session.scalar(
        select(func.count()).select_from(models.Rule).where(models.Rule.user_id == user.id)
    )
    if (count or 0) >= limit:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body",),
                    "msg": f"A user may have at most {limit} rules",
                    "input": None,
                }
            ]
        )


@dataclass
class RuleWriter:
    """What changing one user's rules needs: checks, then commit, then the announcement."""

    username: str
    session: AsyncSession
    directory: Directory
    services: Services

    async def check(self, rule: schema.RuleBase) -> None:
        check_account_names(rule)
        await check_reach(self.session, self.username, rule)
        await check_destinations(self.directory, self.username, rule, self.services.settings)

    async def create(self, rule: schema.RuleBase) -> RulePublic:
        await self.check(rule)
        user = await get_or_create_user(self.session, self.username)
        limit = self.services.settings.api.max_rules_per_user
        await check_rule_count(self.session, user, limit)
        row = models.Rule(user=user)
        apply_to_model(row, rule)
        self.session.add(row)
        return await self.save(row, "create")

    async def replace(self, rule_id: int, rule: schema.RuleBase) -> RulePublic:
        row = await get_rule(self.session, self.username, rule_id)
        await self.check(rule)
        apply_to_model(row, rule)
        return await self.save(row, "update")

    async def patch(self, rule_id: int, patch: RulePatch) -> RulePublic:
        """Enable, disable or mute a rule; fields left out stay as they are."""
        row = await get_rule(self.session, self.username, rule_id)
        if patch.disabled is not None:
            row.disabled = patch.disabled
        if "muted_until" in patch.model_fields_set:
            row.muted_until = patch.muted_until
        if self.session.is_modified(row):
            await self.session.commit()
            self.services.announcer.announce("update", row.id, row.name, self.username)
        return await read_public(self.session, row.id)

    async def delete(self, rule_id: int) -> None:
        row = await get_rule(self.session, self.username, rule_id)
        name = row.name
        await self.session.delete(row)
        await self.session.commit()
        self.services.announcer.announce("delete", rule_id, name, self.username)

    async def save(self, row: models.Rule, action: str) -> RulePublic:
        await self.session.commit()
        self.services.announcer.announce(action, row.id, row.name, self.username)
        return await read_public(self.session, row.id)
