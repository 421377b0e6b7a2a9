"""team destinations: a group's list address, IRC channel or Matrix room, and its verification

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 23:30:00

Team rules (FMN #179) are owned by a group through an owner row `group:<name>` in `users`
(fmn.core.owners), so the rules' own tables do not change. What is new is where they may
deliver: a destination a sponsor proved they can read, by entering the code fmn sent there.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "team_destinations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_name", sa.UnicodeText(), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("address", sa.UnicodeText(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code_hash", sa.String(length=128), nullable=True),
        sa.Column("code_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_by", sa.UnicodeText(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("team_destinations_pkey")),
        sa.UniqueConstraint(
            "group_name", "protocol", "address", name=op.f("team_destinations_group_name_protocol_address_key")
        ),
    )
    op.create_index(
        op.f("team_destinations_group_name_idx"), "team_destinations", ["group_name"]
    )


def downgrade() -> None:
    op.drop_index(op.f("team_destinations_group_name_idx"), table_name="team_destinations")
    op.drop_table("team_destinations")
