"""The rule store. Table and column names follow FMN 3 (reference §2.1) so its data imports as is;
the tables after ``Generated`` are fmn's own additions (settings, delivery log, archive)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Time,
    UnicodeText,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: DateTime(timezone=True)}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(UnicodeText, unique=True)

    rules: Mapped[list[Rule]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    settings: Mapped[UserSettings | None] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class Rule(Base):
    __tablename__ = "rules"
    # SQLite: an id is never given twice, so an old unsubscribe link cannot reach a newer rule
    # (PostgreSQL's sequences already behave so; migration 0004).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(UnicodeText)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # fmn addition: a muted rule generates nothing until this time.
    muted_until: Mapped[dt.datetime | None] = mapped_column()

    user: Mapped[User] = relationship(back_populates="rules")
    tracking_rule: Mapped[TrackingRule] = relationship(
        back_populates="rule", cascade="all, delete-orphan", passive_deletes=True
    )
    generation_rules: Mapped[list[GenerationRule]] = relationship(
        back_populates="rule",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="GenerationRule.id",
    )
    generated: Mapped[list[Generated]] = relationship(
        back_populates="rule", cascade="all, delete-orphan", passive_deletes=True
    )


class TrackingRule(Base):
    __tablename__ = "tracking_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    params: Mapped[Any] = mapped_column(JSON, nullable=True)

    rule: Mapped[Rule] = relationship(back_populates="tracking_rule")


class GenerationRule(Base):
    __tablename__ = "generation_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id", ondelete="CASCADE"), index=True)

    rule: Mapped[Rule] = relationship(back_populates="generation_rules")
    destinations: Mapped[list[Destination]] = relationship(
        back_populates="generation_rule",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Destination.id",
    )
    filters: Mapped[list[Filter]] = relationship(
        back_populates="generation_rule",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Filter.id",
    )


class Filter(Base):
    __tablename__ = "filters"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation_rule_id: Mapped[int] = mapped_column(
        ForeignKey("generation_rules.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    params: Mapped[Any] = mapped_column(JSON, nullable=True)

    generation_rule: Mapped[GenerationRule] = relationship(back_populates="filters")


class Destination(Base):
    __tablename__ = "destinations"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation_rule_id: Mapped[int] = mapped_column(
        ForeignKey("generation_rules.id", ondelete="CASCADE"), index=True
    )
    protocol: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(UnicodeText)

    generation_rule: Mapped[GenerationRule] = relationship(back_populates="destinations")


class Generated(Base):
    """Notifications generated per rule. FMN 3 writes one row per hit; fmn writes one row per
    rule and flush interval, with the summed count."""

    __tablename__ = "generated"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id", ondelete="CASCADE"), index=True)
    when: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    count: Mapped[int] = mapped_column(Integer, default=1)

    rule: Mapped[Rule] = relationship(back_populates="generated")


# ---- fmn additions -------------------------------------------------------------------------


class UserRulesVersion(Base):
    """PostgreSQL: a number that changes, in the writing transaction, whenever anything a user's
    rules list shows changes (their rules, tracking rules, generation rules, destinations,
    filters), whoever writes: triggers keep it (migration 0002). The API's page cache asks for
    it instead of reading the page again (fmn.api.rule_cache)."""

    __tablename__ = "user_rules_versions"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInteger)


class UserCountsVersion(Base):
    """The same for the notification counts of a user's rules (`generated`): a row apart, so
    the consumer's counts flush and rule changes never wait for each other."""

    __tablename__ = "user_counts_versions"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInteger)


class DigestMode(enum.StrEnum):
    NONE = "none"
    HOURLY = "hourly"
    DAILY = "daily"


class UserSettings(Base):
    __tablename__ = "user_settings"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    digest_mode: Mapped[DigestMode] = mapped_column(
        Enum(
            DigestMode,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=DigestMode.NONE,
    )
    # Quiet hours in the user's timezone: notifications are held, then delivered as a digest.
    quiet_hours_start: Mapped[dt.time | None] = mapped_column(Time)
    quiet_hours_end: Mapped[dt.time | None] = mapped_column(Time)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    muted_until: Mapped[dt.datetime | None] = mapped_column()

    user: Mapped[User] = relationship(back_populates="settings")


class DeliveryStatus(enum.StrEnum):
    SENT = "sent"
    FAILED = "failed"  # one attempt failed; will be retried
    DEAD = "dead"  # gave up; in the dead-letter queue
    HELD = "held"  # held for a digest, quiet hours or mute
    DIGESTED = "digested"  # delivered inside a digest


class Delivery(Base):
    """The delivery log: every attempt and delivery, for the history page and for admins."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("deliveries_user_name_created_at_idx", "user_name", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user_name: Mapped[str] = mapped_column(UnicodeText)
    idempotency_key: Mapped[str] = mapped_column(String(512), index=True)
    message_id: Mapped[str] = mapped_column(String(255), index=True)
    topic: Mapped[str] = mapped_column(UnicodeText)
    protocol: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(UnicodeText)
    rule_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(
            DeliveryStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    detail: Mapped[str | None] = mapped_column(UnicodeText)
    summary: Mapped[str | None] = mapped_column(UnicodeText)


class ArchivedMessage(Base):
    """A bounded archive of recent bus messages, for previews and history."""

    __tablename__ = "archived_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    topic: Mapped[str] = mapped_column(UnicodeText)
    sent_at: Mapped[dt.datetime] = mapped_column(index=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The serialized message ({topic, headers, id, body}) as fedora-messaging writes it.
    data: Mapped[Any] = mapped_column(JSON)

    keys: Mapped[list[ArchivedMessageKey]] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True
    )


class ArchivedMessageKey(Base):
    """The match keys of an archived message (user, package, agent, application, ...), so a rule
    preview reads only the messages that could match it."""

    __tablename__ = "archived_message_keys"
    __table_args__ = (
        Index("archived_message_keys_kind_value_sent_at_idx", "kind", "value", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_pk: Mapped[int] = mapped_column(
        ForeignKey("archived_messages.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(UnicodeText)
    sent_at: Mapped[dt.datetime] = mapped_column()

    message: Mapped[ArchivedMessage] = relationship(back_populates="keys")


class InboxEntry(Base):
    """A notification in a user's web inbox, stored by the web sender (fmn/senders/web.py)."""

    __tablename__ = "inbox_entries"
    # Ids only grow, and one is never given twice (SQLite too): a stream resumes after the
    # last id its client saw (Last-Event-ID).
    __table_args__ = (
        Index("inbox_entries_user_id_id_idx", "user_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The work item's idempotency key: a redelivered work item is never stored twice.
    key: Mapped[str] = mapped_column(String(512), unique=True)
    subject: Mapped[str] = mapped_column(UnicodeText)
    text: Mapped[str] = mapped_column(UnicodeText)
    link: Mapped[str | None] = mapped_column(UnicodeText)
    application: Mapped[str | None] = mapped_column(UnicodeText)
    topic: Mapped[str] = mapped_column(UnicodeText)
    message_id: Mapped[str] = mapped_column(String(255))
    message_time: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    read: Mapped[bool] = mapped_column(Boolean, default=False)

    rules: Mapped[list[InboxEntryRule]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="InboxEntryRule.rule_id"
    )


class InboxEntryRule(Base):
    """The rules that fired for an inbox entry. No foreign key to `rules`: a deleted rule's
    entries stay (and show the rule without its name); rule ids are never reused."""

    __tablename__ = "inbox_entry_rules"

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("inbox_entries.id", ondelete="CASCADE"), primary_key=True
    )
    rule_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)


class PushSubscription(Base):
    """A browser's Web Push subscription (RFC 8030): where to push, and its keys (RFC 8291)."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # One browser, one subscription: its endpoint belongs to whoever subscribed it last.
    endpoint: Mapped[str] = mapped_column(String(2048), unique=True)
    p256dh: Mapped[str] = mapped_column(String(255))
    auth: Mapped[str] = mapped_column(String(255))
    device: Mapped[str] = mapped_column(UnicodeText)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FeedToken(Base):
    """The secret in a user's Atom feed URLs; a new one replaces it (the old URLs stop)."""

    __tablename__ = "feed_tokens"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    token: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
