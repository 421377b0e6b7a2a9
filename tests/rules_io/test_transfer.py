"""`fmn rules import/export` and `fmn import-fmn3`, run as a user runs them, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import DATA_DIR
from tests.harness import services

EXAMPLES = json.loads((DATA_DIR / "fmn3-rules.json").read_text())


@pytest.fixture
def fresh_db() -> Iterator[str]:
    """An empty, migrated database the CLI can commit to."""
    name = f"{services.pg_database_name()}_cli"
    url = services.recreate_database(name)
    fmn("db", "upgrade", url=url)
    yield url
    services.drop_database(name)


def fmn(*args: str, url: str, check: bool = True, stdin: str | None = None) -> Any:
    env = {**os.environ, "FMN_DATABASE__URL": url, "FMN_CONFIG": ""}
    env.pop("FMN_CONFIG")
    result = subprocess.run(
        [sys.executable, "-m", "fmn", *args],
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def export(url: str, *args: str) -> list[dict[str, Any]]:
    return json.loads(fmn("rules", "export", *args, url=url).stdout)


def count_rows(url: str, table: str) -> int:
    async def run() -> int:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        finally:
            await conn.close()

    return asyncio.run(run())


def test_fmn3_examples_round_trip_unchanged(fresh_db: str, tmp_path: Path) -> None:
    result = fmn("rules", "import", str(DATA_DIR / "fmn3-rules.json"), url=fresh_db)
    assert "5 created" in result.stdout
    assert export(fresh_db) == EXAMPLES
    assert export(fresh_db, "--user", "bob") == [r for r in EXAMPLES if r["user"]["name"] == "bob"]
    # Importing the export again changes nothing.
    out = tmp_path / "export.json"
    fmn("rules", "export", "-o", str(out), url=fresh_db)
    again = fmn("rules", "import", str(out), url=fresh_db)
    assert "0 created, 0 updated, 5 unchanged" in again.stdout
    assert export(fresh_db) == EXAMPLES


def test_fmn_own_kinds_round_trip(fresh_db: str, tmp_path: Path) -> None:
    generation_rules = [{**gr, "id": None} for gr in EXAMPLES[0]["generation_rules"]]
    rules = [
        {
            **EXAMPLES[0],
            "id": 100 + i,
            "name": tracking["name"],
            "tracking_rule": tracking,
            "generation_rules": generation_rules,
        }
        for i, tracking in enumerate(
            [
                {"name": "applications", "params": ["ansible", "bodhi"]},
                {"name": "topics", "params": ["org.fedoraproject.*.wiki.*"]},
                {"name": "projects-followed", "params": [{"forge": "pagure.io", "name": "fesco"}]},
            ]
        )
    ]
    source = tmp_path / "rules.json"
    source.write_text(json.dumps(rules))
    assert "3 created" in fmn("rules", "import", str(source), url=fresh_db).stdout
    assert [r["tracking_rule"] for r in export(fresh_db)] == [r["tracking_rule"] for r in rules]

    unknown_forge = [
        {
            **rules[2],
            "tracking_rule": {
                "name": "projects-followed",
                "params": [{"forge": "gitlab.com", "name": "x"}],
            },
        }
    ]
    source.write_text(json.dumps(unknown_forge))
    refused = fmn("rules", "import", str(source), url=fresh_db, check=False)
    assert refused.returncode != 0 and "gitlab.com" in refused.stderr
    assert count_rows(fresh_db, "rules") == 3


def test_import_replaces_a_changed_rule_and_new_rules_get_fresh_ids(
    fresh_db: str, tmp_path: Path
) -> None:
    fmn("rules", "import", str(DATA_DIR / "fmn3-rules.json"), url=fresh_db)
    changed = json.loads(json.dumps(EXAMPLES))
    changed[1]["generation_rules"] = changed[1]["generation_rules"][:1]
    changed[1]["name"] = "Only IRC now"
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    assert "1 updated, 4 unchanged" in fmn("rules", "import", str(path), url=fresh_db).stdout
    assert export(fresh_db) == changed
    assert count_rows(fresh_db, "generation_rules") == 5


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda r: r[1]["tracking_rule"].update(name="artifacts-stolen"),
            "rule 2 (id 2): tracking_rule: unknown tracking rule 'artifacts-stolen'",
        ),
        (
            lambda r: r[0]["generation_rules"][0]["filters"].update(colour="red"),
            "rule 1 (id 1): generation_rules.0.filters.colour: unknown field 'colour'",
        ),
        (
            lambda r: r[3]["generation_rules"][0]["destinations"].append(
                {"protocol": "email", "address": "not-an-address"}
            ),
            "'not-an-address' is not a valid email address",
        ),
        (
            lambda r: r[4]["generation_rules"][0]["destinations"].append(
                {"protocol": "irc", "address": "bob\r\nQUIT"}
            ),
            "control characters",
        ),
        (
            lambda r: r[2]["generation_rules"][0]["destinations"].append({"protocol": "fax"}),
            "rule 3 (id 3): generation_rules.0.destinations.1.protocol",
        ),
    ],
)
def test_bad_rule_file_imports_nothing(
    fresh_db: str, tmp_path: Path, mutate: Any, expected: str
) -> None:
    rules = json.loads(json.dumps(EXAMPLES))
    mutate(rules)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rules))
    result = fmn("rules", "import", str(path), url=fresh_db, check=False)
    assert result.returncode == 1
    assert "nothing imported" in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert count_rows(fresh_db, "rules") == 0
    assert count_rows(fresh_db, "users") == 0


def test_rule_owned_by_someone_else_aborts_the_whole_import(fresh_db: str, tmp_path: Path) -> None:
    fmn("rules", "import", str(DATA_DIR / "fmn3-rules.json"), url=fresh_db)
    hijack = json.loads(json.dumps(EXAMPLES))
    hijack.append({**hijack[0], "id": 50, "generation_rules": []})
    hijack[0]["user"] = {"name": "mallory"}
    hijack[-1]["generation_rules"] = [
        {"destinations": [{"protocol": "email", "address": "m@example.com"}]}
    ]
    path = tmp_path / "hijack.json"
    path.write_text(json.dumps(hijack))
    result = fmn("rules", "import", str(path), url=fresh_db, check=False)
    assert result.returncode == 1
    assert "rule 1 belongs to 'alice', not 'mallory'" in result.stderr
    assert export(fresh_db) == EXAMPLES  # rule 50 was not written either


def test_not_json_is_refused(fresh_db: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    result = fmn("rules", "import", str(path), url=fresh_db, check=False)
    assert result.returncode == 1
    assert "not JSON" in result.stderr


# ---- FMN 3 databases ------------------------------------------------------------------------

FMN3_SCHEMA = """
CREATE TABLE users (id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE rules (
    id SERIAL PRIMARY KEY, name TEXT, disabled BOOLEAN NOT NULL DEFAULT FALSE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE);
CREATE INDEX rules_disabled_idx ON rules (disabled);
CREATE TABLE tracking_rules (
    id SERIAL PRIMARY KEY, rule_id INTEGER NOT NULL UNIQUE REFERENCES rules(id),
    name VARCHAR(255) NOT NULL, params JSON);
CREATE TABLE generation_rules (
    id SERIAL PRIMARY KEY, rule_id INTEGER NOT NULL REFERENCES rules(id) ON DELETE CASCADE);
CREATE TABLE filters (
    id SERIAL PRIMARY KEY,
    generation_rule_id INTEGER NOT NULL REFERENCES generation_rules(id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL, params JSON);
CREATE TABLE destinations (
    id SERIAL PRIMARY KEY,
    generation_rule_id INTEGER NOT NULL REFERENCES generation_rules(id) ON DELETE CASCADE,
    protocol VARCHAR(255) NOT NULL, address TEXT NOT NULL);
CREATE TABLE generated (
    id SERIAL PRIMARY KEY, rule_id INTEGER NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    "when" TIMESTAMP NOT NULL DEFAULT now(), count INTEGER NOT NULL);
"""


async def _build_fmn3_database(dsn: str) -> None:
    """An FMN 3 database holding the example rules, stored as FMN 3 stores them: one filters row
    per filter key, every key present, plus a user with no rules."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(FMN3_SCHEMA)
        users = {r["user"]["name"]: r["user"]["id"] for r in EXAMPLES}
        for name, user_id in sorted(users.items(), key=lambda kv: kv[1]):
            await conn.execute("INSERT INTO users (id, name) VALUES ($1, $2)", user_id, name)
        await conn.execute("INSERT INTO users (id, name) VALUES (9, 'newcomer')")
        for rule in EXAMPLES:
            await conn.execute(
                "INSERT INTO rules (id, name, disabled, user_id) VALUES ($1, $2, $3, $4)",
                rule["id"],
                rule["name"],
                rule["disabled"],
                rule["user"]["id"],
            )
            await conn.execute(
                "INSERT INTO tracking_rules (rule_id, name, params) VALUES ($1, $2, $3)",
                rule["id"],
                rule["tracking_rule"]["name"],
                json.dumps(rule["tracking_rule"]["params"]),
            )
            for gr in rule["generation_rules"]:
                await conn.execute(
                    "INSERT INTO generation_rules (id, rule_id) VALUES ($1, $2)",
                    gr["id"],
                    rule["id"],
                )
                for dest in gr["destinations"]:
                    await conn.execute(
                        "INSERT INTO destinations (generation_rule_id, protocol, address) "
                        "VALUES ($1, $2, $3)",
                        gr["id"],
                        dest["protocol"],
                        dest["address"],
                    )
                for name, params in gr["filters"].items():
                    await conn.execute(
                        "INSERT INTO filters (generation_rule_id, name, params) "
                        "VALUES ($1, $2, $3)",
                        gr["id"],
                        name,
                        json.dumps(params),
                    )
        await conn.execute("INSERT INTO generated (rule_id, count) VALUES (2, 1), (2, 1)")
    finally:
        await conn.close()


@pytest.fixture
def fmn3_db() -> Iterator[str]:
    name = f"{services.pg_database_name()}_fmn3"
    url = services.recreate_database(name)
    asyncio.run(_build_fmn3_database(url.replace("postgresql+asyncpg", "postgresql")))
    yield url.replace("postgresql+asyncpg", "postgresql")
    services.drop_database(name)


def test_fmn3_database_imports_completely_and_idempotently(fresh_db: str, fmn3_db: str) -> None:
    first = fmn("import-fmn3", "--from", fmn3_db, url=fresh_db)
    assert "users: 3 created; rules: 5 created, 0 updated, 0 unchanged" in first.stdout
    assert export(fresh_db) == EXAMPLES
    second = fmn("import-fmn3", "--from", fmn3_db, url=fresh_db)
    assert "users: 0 created; rules: 0 created, 0 updated, 5 unchanged" in second.stdout
    assert export(fresh_db) == EXAMPLES
    assert count_rows(fresh_db, "users") == 3
    assert count_rows(fresh_db, "filters") == 9  # only the filters that differ from defaults


def test_import_fmn3_from_something_else_fails_clearly(fresh_db: str) -> None:
    result = fmn(
        "import-fmn3", "--from", fresh_db.replace("_cli", "_nope"), url=fresh_db, check=False
    )
    assert result.returncode == 1
    assert "database error" in result.stderr
    assert "Traceback" not in result.stderr
