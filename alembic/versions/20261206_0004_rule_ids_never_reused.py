"""rule ids are never reused, on SQLite too

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 20:45:00

An unsubscribe link names a rule by its id. On SQLite an INTEGER PRIMARY KEY takes the largest
id + 1, so a new rule could take the id of the last one deleted, and an old link would then act
on the new rule. AUTOINCREMENT makes SQLite remember the largest id ever given. PostgreSQL's
sequences never hand an id out twice: nothing to do there.

The table is rebuilt (SQLite cannot add AUTOINCREMENT in place); alembic/env.py turns foreign
keys off for it, so the rebuild does not cascade to the rules' rows elsewhere. The ids of rules
deleted before this migration are not known any more: only those from now on are kept.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "rules", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
