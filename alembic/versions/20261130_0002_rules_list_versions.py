"""rules list versions: per-user numbers that triggers change with every write to what a
user's rules list shows (PostgreSQL), so the API's page cache checks one row instead of
fingerprinting every row of the user's rules

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 14:40:00

Two rows per user, in two tables: `user_rules_versions` changes with the user's rules, tracking
rules, generation rules, destinations and filters; `user_counts_versions` with the notification
counts of their rules (`generated`), which the consumer flushes for many users in one
transaction: apart, a counts flush and a rule change never wait for each other's row.

Statement-level AFTER triggers (transition tables: one call per statement, however many rows)
set the versions of every user whose rows the statement inserted, updated (before or after)
or deleted to new values of one sequence, in the writing transaction, so a reader sees a new
version exactly when it sees the new rows, and a value is never seen twice. Each statement
takes the version rows in user id order (a counts flush touching many users cannot deadlock
with another). A rule (or generation rule) moved to another owner first locks its parts
(FOR UPDATE): a writer of one of them that mapped it to its old owner commits before the move
does, and one that comes later waits and maps it to the new owner.

SQLite: the tables only (the API reads the page every time there).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One statement each (the driver prepares statements one by one).
SETUP = [
    "CREATE SEQUENCE user_list_version_seq",
    # The owners of rules, of generation rules.
    """CREATE FUNCTION fmn_rule_owners(ids integer[]) RETURNS integer[]
LANGUAGE sql STABLE AS $$
  SELECT ARRAY(SELECT r.user_id FROM rules r WHERE r.id = ANY (ids))
$$""",
    """CREATE FUNCTION fmn_generation_rule_owners(ids integer[]) RETURNS integer[]
LANGUAGE sql STABLE AS $$
  SELECT ARRAY(SELECT r.user_id FROM generation_rules g JOIN rules r ON r.id = g.rule_id
               WHERE g.id = ANY (ids))
$$""",
]

# New versions for these users (those still there), taken in user id order.
BUMP = """CREATE FUNCTION fmn_bump_{kind}_versions(user_ids integer[]) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO user_{kind}_versions AS v (user_id, version)
  SELECT u.id, nextval('user_list_version_seq') FROM users u
  WHERE u.id = ANY (user_ids) ORDER BY u.id
  ON CONFLICT (user_id) DO UPDATE SET version = excluded.version
$$"""

# Rows moving to another owner: lock them and everything under them (FOR UPDATE), so that
# writers of those that mapped them to the old owner commit first, and later ones wait.
HOLD = """CREATE FUNCTION fmn_hold_{name}(ids integer[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF cardinality(ids) = 0 THEN
    RETURN;
  END IF;
  {locks}
END $$"""
HOLDS = {
    "generation_rules": [
        "PERFORM 1 FROM generation_rules WHERE id = ANY (ids) ORDER BY id FOR UPDATE;",
        "PERFORM 1 FROM destinations WHERE generation_rule_id = ANY (ids) ORDER BY id FOR UPDATE;",
        "PERFORM 1 FROM filters WHERE generation_rule_id = ANY (ids) ORDER BY id FOR UPDATE;",
    ],
    "rules": [
        "PERFORM 1 FROM rules WHERE id = ANY (ids) ORDER BY id FOR UPDATE;",
        "PERFORM 1 FROM tracking_rules WHERE rule_id = ANY (ids) ORDER BY id FOR UPDATE;",
        "PERFORM 1 FROM generated WHERE rule_id = ANY (ids) ORDER BY id FOR UPDATE;",
        "PERFORM fmn_hold_generation_rules("
        "ARRAY(SELECT id FROM generation_rules WHERE rule_id = ANY (ids)));",
    ],
}

# TRUNCATE of any watched table: every user's lists change.
BUMP_ALL = """CREATE FUNCTION fmn_bump_all_versions() RETURNS void
LANGUAGE sql AS $$
  SELECT fmn_bump_rules_versions(ARRAY(SELECT id FROM users));
  SELECT fmn_bump_counts_versions(ARRAY(SELECT id FROM users));
$$"""

# A statement trigger: the owners of the rows a statement inserted, updated (before or after)
# or deleted get new versions; an update moving rows to another parent holds them first.
CHANGED = """CREATE FUNCTION fmn_{table}_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM fmn_bump_{kind}_versions({owners}(ARRAY(SELECT {key} FROM new_rows)));
  ELSIF TG_OP = 'UPDATE' THEN
    {hold}
    PERFORM fmn_bump_{kind}_versions({owners}(ARRAY(
      SELECT {key} FROM old_rows UNION SELECT {key} FROM new_rows)));
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM fmn_bump_{kind}_versions({owners}(ARRAY(SELECT {key} FROM old_rows)));
  ELSE
    PERFORM fmn_bump_all_versions();
  END IF;
  RETURN NULL;
END $$"""
MOVED = """PERFORM fmn_hold_{table}(ARRAY(
      SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE o.{key} <> n.{key}));"""

# Each table whose rows the rules list shows: (the version it changes, the column naming the
# parent, the function giving the parent's owner, whether its rows have parts to hold).
WATCHED = {
    "rules": ("rules", "user_id", "", True),
    "tracking_rules": ("rules", "rule_id", "fmn_rule_owners", False),
    "generation_rules": ("rules", "rule_id", "fmn_rule_owners", True),
    "destinations": ("rules", "generation_rule_id", "fmn_generation_rule_owners", False),
    "filters": ("rules", "generation_rule_id", "fmn_generation_rule_owners", False),
    "generated": ("counts", "rule_id", "fmn_rule_owners", False),
}


def _functions() -> list[str]:
    functions = [*SETUP, BUMP.format(kind="rules"), BUMP.format(kind="counts"), BUMP_ALL]
    for name in ("generation_rules", "rules"):  # the second calls the first
        functions.append(HOLD.format(name=name, locks="\n  ".join(HOLDS[name])))
    for table, (kind, key, owners, parts) in WATCHED.items():
        hold = MOVED.format(table=table, key=key) if parts else ""
        functions.append(CHANGED.format(table=table, kind=kind, key=key, owners=owners, hold=hold))
    return functions


# A trigger with transition tables takes one event only: one trigger per event.
EVENTS = {
    "insert": "REFERENCING NEW TABLE AS new_rows ",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows ",
    "delete": "REFERENCING OLD TABLE AS old_rows ",
    "truncate": "",
}


def _triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_{event}_list_version AFTER {event.upper()} ON {table} "
        f"{referencing}FOR EACH STATEMENT EXECUTE FUNCTION fmn_{table}_changed()"
        for event, referencing in EVENTS.items()
    ]


def upgrade() -> None:
    for table in ("user_rules_versions", "user_counts_versions"):
        op.create_table(
            table,
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("version", sa.BigInteger(), nullable=False),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["users.id"],
                name=op.f(f"{table}_user_id_users_fkey"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("user_id", name=op.f(f"{table}_pkey")),
        )
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in _functions():
        op.execute(statement)
    for table in WATCHED:
        for statement in _triggers(table):
            op.execute(statement)
    # Every user starts with versions.
    op.execute("SELECT fmn_bump_all_versions()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER {table}_{event}_list_version ON {table}")
            op.execute(f"DROP FUNCTION fmn_{table}_changed()")
        for function in (
            "fmn_hold_rules(integer[])",
            "fmn_hold_generation_rules(integer[])",
            "fmn_bump_all_versions()",
            "fmn_bump_counts_versions(integer[])",
            "fmn_bump_rules_versions(integer[])",
            "fmn_generation_rule_owners(integer[])",
            "fmn_rule_owners(integer[])",
        ):
            op.execute(f"DROP FUNCTION {function}")
        op.execute("DROP SEQUENCE user_list_version_seq")
    op.drop_table("user_counts_versions")
    op.drop_table("user_rules_versions")
