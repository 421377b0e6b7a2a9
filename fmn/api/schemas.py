"""The API's JSON shapes besides rules (fmn/rules/schema.py): one model per direction —
`...Create`/`...Update` for what clients send, `...Public` for what the API answers."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from functools import cache
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from fmn.db.models import DeliveryStatus, DigestMode
from fmn.rules import schema
from fmn.rules.store import StoredRule
from fmn.sendqueue import workitem

# Anchored: pydantic's `pattern` searches, so an unanchored one passes "xx07:50yy".
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class _In(BaseModel):
    """What clients send: unknown keys are refused, so a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


class Detail(BaseModel):
    detail: str


# ---- users ------------------------------------------------------------------------------------


class UserPublic(BaseModel):
    id: int | None = None
    name: str
    is_admin: bool = False


class ArtifactPublic(BaseModel):
    type: schema.ArtifactType
    name: str


class AppConfig(BaseModel):
    oidc_provider_url: str
    oidc_client_id: str
    oidc_scopes: str = Field(description="Space-separated, as OAuth writes scopes")
    public_url: str


# ---- rules ------------------------------------------------------------------------------------


class RulePublic(schema.Rule):
    """A rule as FMN 3 returns it, plus until when it is muted."""

    muted_until: dt.datetime | None = None

    @classmethod
    def of(cls, stored: StoredRule) -> RulePublic:
        # The reader validated the rule; adding muted_until needs no second validation.
        return cls.model_construct(**stored.rule.__dict__, muted_until=stored.muted_until)


class RulePatch(_In):
    """Enable, disable or mute one rule; `muted_until: null` unmutes."""

    disabled: bool | None = None
    muted_until: AwareDatetime | None = None


class AdminRulePatch(_In):
    """FMN 3's RulePatch: `disabled` left out or null changes nothing."""

    disabled: bool | None = None


class DayCount(BaseModel):
    date: dt.date
    count: int


class RuleStats(BaseModel):
    rule_id: int
    series: list[DayCount]


class PreviewRequest(_In):
    rule: schema.RuleCreate
    days: int = Field(7, ge=1, le=14)


class PreviewMessage(BaseModel):
    id: str
    topic: str
    sent_at: dt.datetime
    app_name: str | None
    summary: str
    url: str | None


class PreviewNotification(BaseModel):
    message: PreviewMessage
    destinations: list[schema.Destination]


class PreviewResult(BaseModel):
    total: int = Field(description="Notifications the rule would have produced")
    complete: bool = Field(description="False when the time budget ran out first")
    scanned: int = Field(description="Archived messages read")
    per_day: list[DayCount]
    expected_per_day: float = Field(
        description="Notifications a day, at the rate of the archive read (all of it, or its "
        "newest part when incomplete)"
    )
    digest_suggested: bool = Field(
        description="More than the threshold a day and no digest set: a digest would group them"
    )
    notifications: list[PreviewNotification]


class TopicCount(BaseModel):
    topic: str
    count: int


class TopicCounts(BaseModel):
    pattern: str
    days: int
    messages: int = Field(description="Archived messages of the last `days` days it matches")
    per_day: float
    topics: list[TopicCount] = Field(description="The busiest of the topics it matches")


# ---- settings and history ---------------------------------------------------------------------


class QuietHours(BaseModel):
    start: str = Field(pattern=HHMM.pattern, examples=["22:00"])
    end: str = Field(pattern=HHMM.pattern, examples=["07:00"])


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


class SettingsBase(BaseModel):
    digest_mode: DigestMode = DigestMode.NONE
    quiet_hours: QuietHours | None = None
    timezone: str = Field("UTC", max_length=64)
    muted_until: dt.datetime | None = None


class SettingsUpdate(SettingsBase, _In):
    muted_until: AwareDatetime | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if value not in _timezones():
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Paris)")
        return value


class SettingsPublic(SettingsBase):
    pass


class NotificationPublic(BaseModel):
    id: int
    created_at: dt.datetime
    protocol: str
    address: str
    rule_ids: list[int]
    message_id: str
    topic: str
    summary: str | None
    status: DeliveryStatus
    attempt: int
    detail: str | None


# ---- admin and the rest -----------------------------------------------------------------------


class DeadLetterPublic(BaseModel):
    id: str
    protocol: str
    address: str | None
    user: str | None
    reason: str
    failed_at: str
    attempts: int
    summary: str | None


class ComponentStatus(BaseModel):
    name: str
    ok: bool
    detail: str | None = None


class SystemStatus(BaseModel):
    components: list[ComponentStatus]


class UnsubscribedRule(BaseModel):
    """A rule an unsubscribe link names, and whether it is disabled."""

    id: int
    name: str | None
    disabled: bool


class UnsubscribePublic(BaseModel):
    user: str
    rules: list[UnsubscribedRule] = Field(description="The rule the link is about")
    protocol: str = Field(description="The destination the link stops: its protocol")
    address: str = Field(description="The destination the link stops: its address")
    done: bool = Field(description="True once the rule no longer sends to this destination")


# The protocols a work item can be for (dead letters are listed by it).
Protocol = workitem.Protocol


# ---- teams ------------------------------------------------------------------------------------


class TeamPublic(BaseModel):
    """A group the user belongs to, and whether they sponsor it (then they manage its rules)."""

    group: str
    sponsor: bool


class TeamDestinationCreate(_In):
    """A mailing list address (email), an IRC channel (#name), a Matrix room (!id:server or
    #alias:server). A code is sent to it at once."""

    protocol: Literal["email", "irc", "matrix"]
    address: str = Field(min_length=1, max_length=schema.MAX_NAME_LENGTH)


class TeamDestinationVerify(_In):
    code: str = Field(min_length=1, max_length=64)


class TeamDestinationPublic(BaseModel):
    id: int
    protocol: str
    address: str
    verified: bool
    verified_at: dt.datetime | None = None
    verified_by: str | None = None
    code_sent_at: dt.datetime | None = None
