"""counts versions: a row trigger for inserted counts, and count writers one at a time

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 15:50:00

The consumer's counts flush inserts one row per statement (SQLAlchemy runs a list of rows
through asyncpg's executemany): the statement trigger of 0002 then ran once per row, ~90 µs
each (a transition table, two function calls), against ~12 µs for a row trigger. And each of
those statements took one user's counts version row, in the flush's order of rules, not in
user id order: two consumers flushing at once could deadlock.

So: inserted counts bump their owner's version from a row trigger (fired after the foreign
key's check, as before: triggers fire by name, and the constraint's comes first), and every
transaction that bumps counts versions first takes one transaction-level advisory lock:
count writers go one after another (a flush holds it for a few milliseconds), never in a
cycle. Updates, deletes and truncations of counts keep the statement trigger (and take the
lock too, when they have versions to bump).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# pg_advisory_xact_lock's key for writers of counts versions ('fmn' 'c').
LOCK = 0x666D6E63

BUMP = """CREATE OR REPLACE FUNCTION fmn_bump_counts_versions(user_ids integer[]) RETURNS void
LANGUAGE sql AS $$
  SELECT pg_advisory_xact_lock({lock}) WHERE cardinality(user_ids) > 0;
  INSERT INTO user_counts_versions AS v (user_id, version)
  SELECT u.id, nextval('user_list_version_seq') FROM users u
  WHERE u.id = ANY (user_ids) ORDER BY u.id
  ON CONFLICT (user_id) DO UPDATE SET version = excluded.version
$$"""

BUMP_0002 = """CREATE OR REPLACE FUNCTION fmn_bump_counts_versions(user_ids integer[])
RETURNS void LANGUAGE sql AS $$
  INSERT INTO user_counts_versions AS v (user_id, version)
  SELECT u.id, nextval('user_list_version_seq') FROM users u
  WHERE u.id = ANY (user_ids) ORDER BY u.id
  ON CONFLICT (user_id) DO UPDATE SET version = excluded.version
$$"""

INSERTED = """CREATE FUNCTION fmn_generated_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock({lock});
  INSERT INTO user_counts_versions AS v (user_id, version)
  SELECT r.user_id, nextval('user_list_version_seq') FROM rules r WHERE r.id = NEW.rule_id
  ON CONFLICT (user_id) DO UPDATE SET version = excluded.version;
  RETURN NULL;
END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(BUMP.format(lock=LOCK))
    op.execute(INSERTED.format(lock=LOCK))
    op.execute("DROP TRIGGER generated_insert_list_version ON generated")
    op.execute(
        "CREATE TRIGGER generated_insert_list_version AFTER INSERT ON generated "
        "FOR EACH ROW EXECUTE FUNCTION fmn_generated_inserted()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER generated_insert_list_version ON generated")
    op.execute(
        "CREATE TRIGGER generated_insert_list_version AFTER INSERT ON generated "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION fmn_generated_changed()"
    )
    op.execute("DROP FUNCTION fmn_generated_inserted()")
    op.execute(BUMP_0002)
