"""Rules in and out in FMN 3's API JSON shape: export, all-or-nothing import, and the import of
an FMN 3 database. Imports keep rule and generation-rule ids, so a round trip is unchanged and
running an import twice changes nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from fmn.db import models
from fmn.rules import schema, store

RULE_LIST = TypeAdapter(list[schema.Rule])


class RuleImportError(Exception):
    """A rule file or source database that cannot be imported; nothing was written."""


@dataclass
class ImportReport:
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged"
        )


def describe_errors(exc: ValidationError, raw: Any) -> str:
    """One line per problem, naming the rule (position and id) and the field."""
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ""
        first = loc[0] if loc else None
        if isinstance(first, int):
            index = first
            loc.pop(0)
            rule_id = raw[index].get("id") if isinstance(raw[index], dict) else None
            where = f"rule {index + 1}" + (f" (id {rule_id})" if rule_id is not None else "")
        # Drop pydantic's union-tag segments ("artifacts-owned") from the path.
        path = ".".join(str(p) for p in loc if p not in schema.TRACKING_RULE_NAMES)
        message = err["msg"]
        if err["type"] == "union_tag_invalid":
            message = f"unknown tracking rule {err['input'].get('name')!r}; expected one of " + (
                ", ".join(schema.TRACKING_RULE_NAMES)
            )
        elif err["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        lines.append(f"{where}: {path}: {message}" if path else f"{where}: {message}")
    return "\n".join(lines)


def parse_rules(raw: Any) -> list[schema.Rule]:
    if not isinstance(raw, list):
        raise RuleImportError("a rule file holds a JSON list of rules")
    try:
        return RULE_LIST.validate_python(raw)
    except ValidationError as exc:
        raise RuleImportError(describe_errors(exc, raw)) from None


def parse_rules_file(content: str) -> list[schema.Rule]:
    try:
        raw = json.loads(content)
    except json.JSONDecodeError as exc:
        raise RuleImportError(f"not JSON: {exc}") from None
    return parse_rules(raw)


def _comparable(rule: schema.Rule) -> dict[str, Any]:
    data = rule.model_dump(mode="json", exclude={"generated_last_week"})
    data["user"] = {"name": rule.user.name}
    return data


async def _user(session: AsyncSession, ref: schema.UserRef) -> models.User:
    user = await session.scalar(select(models.User).where(models.User.name == ref.name))
    if user is None:
        # Keep the source's id when it is free, so exports match what was imported.
        free = ref.id is not None and await session.get(models.User, ref.id) is None
        user = models.User(id=ref.id if free else None, name=ref.name)
        session.add(user)
        await session.flush()
    return user


async def _check_ids_free(session: AsyncSession, rules: Sequence[schema.Rule]) -> None:
    """A generation-rule id already used by another rule would silently move it: refuse."""
    wanted = {gr.id: r.id for r in rules for gr in r.generation_rules if gr.id is not None}
    if not wanted:
        return
    rows = await session.execute(
        select(models.GenerationRule.id, models.GenerationRule.rule_id).where(
            models.GenerationRule.id.in_(wanted)
        )
    )
    for gr_id, rule_id in rows.all():
        if wanted[gr_id] != rule_id:
            raise RuleImportError(
                f"rule {wanted[gr_id]}: generation rule id {gr_id} belongs to rule {rule_id}"
            )


async def import_rules(session: AsyncSession, rules: Sequence[schema.Rule]) -> ImportReport:
    """Create or replace each rule, keeping its id. The caller owns the transaction."""
    report = ImportReport()
    ids = [r.id for r in rules]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RuleImportError(f"rule ids appear more than once: {duplicates}")
    await _check_ids_free(session, rules)
    for data in rules:
        existing = await session.scalar(
            select(models.Rule).options(*store.RULE_LOAD_OPTIONS).where(models.Rule.id == data.id)
        )
        if existing is not None:
            if existing.user.name != data.user.name:
                raise RuleImportError(
                    f"rule {data.id} belongs to {existing.user.name!r}, not {data.user.name!r}"
                )
            before = (await store.read_rules(session, rule_id=data.id, counts=False)).rules
            # (nothing read: a row without a tracking rule, which the import repairs)
            if before and _comparable(before[0].rule) == _comparable(data):
                report.unchanged.append(data.id)
                continue
            # Replace generation rules wholesale; flush the deletions before reusing their ids.
            existing.generation_rules = []
            await session.flush()
            store.apply_to_model(existing, data, keep_ids=True)
            report.updated.append(data.id)
        else:
            user = await _user(session, data.user)
            rule = models.Rule(id=data.id, user=user)
            store.apply_to_model(rule, data, keep_ids=True)
            session.add(rule)
            report.created.append(data.id)
        await session.flush()
    await _advance_sequences(session)
    return report


async def _advance_sequences(session: AsyncSession) -> None:
    """Explicit ids leave PostgreSQL's sequences behind; move them past the largest id."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in ("users", "rules", "generation_rules", "tracking_rules", "filters"):
        await session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), 1))"
            )
        )
    await session.execute(
        text(
            "SELECT setval(pg_get_serial_sequence('destinations', 'id'), "
            "GREATEST((SELECT COALESCE(MAX(id), 0) FROM destinations), 1))"
        )
    )


async def export_rules(session: AsyncSession, username: str | None = None) -> list[dict[str, Any]]:
    read = await store.read_rules(session, username=username)
    return [stored.rule.model_dump(mode="json") for stored in read.rules]


# ---- FMN 3 databases ------------------------------------------------------------------------


async def read_fmn3_rules(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Rules of an FMN 3 database (reference §2.1) in API JSON shape, ordered by id."""

    async def rows(query: str) -> list[Any]:
        return list((await conn.execute(text(query))).mappings().all())

    try:
        users = {r["id"]: r["name"] for r in await rows("SELECT id, name FROM users")}
        rules = await rows("SELECT id, name, disabled, user_id FROM rules ORDER BY id")
        tracking = {
            r["rule_id"]: r
            for r in await rows(
                "SELECT rule_id, name, CAST(params AS TEXT) AS params FROM tracking_rules"
            )
        }
        generation = await rows("SELECT id, rule_id FROM generation_rules ORDER BY id")
        destinations = await rows(
            "SELECT generation_rule_id, protocol, address FROM destinations ORDER BY id"
        )
        filters = await rows(
            "SELECT generation_rule_id, name, CAST(params AS TEXT) AS params FROM filters "
            "ORDER BY id"
        )
    except Exception as exc:
        raise RuleImportError(f"not an FMN 3 database: {str(exc).splitlines()[0]}") from None

    def params(value: str | None) -> Any:
        # Read as text (CAST above) so PostgreSQL and SQLite sources decode alike.
        return json.loads(value) if value is not None else None

    result = []
    for rule in rules:
        track = tracking.get(rule["id"])
        if track is None:
            raise RuleImportError(f"rule {rule['id']} has no tracking rule")
        grs = []
        for gr in (g for g in generation if g["rule_id"] == rule["id"]):
            grs.append(
                {
                    "id": gr["id"],
                    "destinations": [
                        {"protocol": d["protocol"], "address": d["address"]}
                        for d in destinations
                        if d["generation_rule_id"] == gr["id"]
                    ],
                    "filters": {
                        f["name"]: params(f["params"])
                        for f in filters
                        if f["generation_rule_id"] == gr["id"] and f["name"] in schema.FILTER_NAMES
                    },
                }
            )
        result.append(
            {
                "id": rule["id"],
                "name": rule["name"],
                "disabled": bool(rule["disabled"]),
                "user": {"id": rule["user_id"], "name": users[rule["user_id"]]},
                "tracking_rule": {"name": track["name"], "params": params(track["params"])},
                "generation_rules": grs,
            }
        )
    return result


async def fmn3_users(conn: AsyncConnection) -> list[tuple[int, str]]:
    rows = await conn.execute(text("SELECT id, name FROM users ORDER BY id"))
    return [(int(i), str(n)) for i, n in rows.all()]


async def import_users(session: AsyncSession, users: Sequence[tuple[int, str]]) -> int:
    """Users without rules come along too (FMN 3 creates users at first log-in)."""
    created = 0
    for user_id, name in users:
        before = await session.scalar(select(models.User.id).where(models.User.name == name))
        if before is None:
            await _user(session, schema.UserRef(id=user_id, name=name))
            created += 1
    return created


__all__ = [
    "ImportReport",
    "RuleImportError",
    "export_rules",
    "import_rules",
    "import_users",
    "parse_rules",
    "parse_rules_file",
    "read_fmn3_rules",
]
