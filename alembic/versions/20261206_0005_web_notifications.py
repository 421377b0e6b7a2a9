"""web notifications: the inbox, push subscriptions and feed tokens

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 23:30:00

The web sender stores each notification for the `web` protocol in `inbox_entries`, once per
work item (its idempotency key is unique), with the rules that fired in `inbox_entry_rules`
(no foreign key: a deleted rule's entries stay). Entry ids are never given twice, on SQLite too
(AUTOINCREMENT): streams resume after the last id a client saw.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey(
                "users.id", ondelete="CASCADE", name="inbox_entries_user_id_users_fkey"
            ),
            nullable=False,
        ),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("subject", sa.UnicodeText(), nullable=False),
        sa.Column("text", sa.UnicodeText(), nullable=False),
        sa.Column("link", sa.UnicodeText(), nullable=True),
        sa.Column("application", sa.UnicodeText(), nullable=True),
        sa.Column("topic", sa.UnicodeText(), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("message_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="inbox_entries_pkey"),
        sa.UniqueConstraint("key", name="inbox_entries_key_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("inbox_entries_user_id_id_idx", "inbox_entries", ["user_id", "id"])
    op.create_index("inbox_entries_created_at_idx", "inbox_entries", ["created_at"])
    op.create_table(
        "inbox_entry_rules",
        sa.Column(
            "entry_id",
            sa.Integer(),
            sa.ForeignKey(
                "inbox_entries.id",
                ondelete="CASCADE",
                name="inbox_entry_rules_entry_id_inbox_entries_fkey",
            ),
            nullable=False,
        ),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", "rule_id", name="inbox_entry_rules_pkey"),
    )
    op.create_index("inbox_entry_rules_rule_id_idx", "inbox_entry_rules", ["rule_id"])
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey(
                "users.id", ondelete="CASCADE", name="push_subscriptions_user_id_users_fkey"
            ),
            nullable=False,
        ),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("p256dh", sa.String(255), nullable=False),
        sa.Column("auth", sa.String(255), nullable=False),
        sa.Column("device", sa.UnicodeText(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="push_subscriptions_pkey"),
        sa.UniqueConstraint("endpoint", name="push_subscriptions_endpoint_key"),
    )
    op.create_index("push_subscriptions_user_id_idx", "push_subscriptions", ["user_id"])
    op.create_table(
        "feed_tokens",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="feed_tokens_user_id_users_fkey"),
            nullable=False,
        ),
        sa.Column("token", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="feed_tokens_pkey"),
        sa.UniqueConstraint("token", name="feed_tokens_token_key"),
    )


def downgrade() -> None:
    op.drop_table("feed_tokens")
    op.drop_index("push_subscriptions_user_id_idx", table_name="push_subscriptions")
    op.drop_table("push_subscriptions")
    op.drop_index("inbox_entry_rules_rule_id_idx", table_name="inbox_entry_rules")
    op.drop_table("inbox_entry_rules")
    op.drop_index("inbox_entries_created_at_idx", table_name="inbox_entries")
    op.drop_index("inbox_entries_user_id_id_idx", table_name="inbox_entries")
    op.drop_table("inbox_entries")
