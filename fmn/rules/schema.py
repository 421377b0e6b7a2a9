"""Rules as JSON, in FMN 3's API shape (reference §3), so FMN 3 rules and clients work unchanged.

Defined once: the API, ``fmn rules import/export``, ``fmn match`` and the consumer all read rules
through these models.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fmn.directory import names
from fmn.rules.forges import FORGES

ArtifactType = Literal["rpms", "containers", "modules", "flatpaks"]
# Message attribute -> dist-git namespace (reference §2.2).
ARTIFACT_ATTRIBUTES: dict[str, ArtifactType] = {
    "packages": "rpms",
    "containers": "containers",
    "modules": "modules",
    "flatpaks": "flatpaks",
}

MAX_NAME_LENGTH = 255
MAX_LIST_LENGTH = 1000

EMAIL_RE = re.compile(r"[\w_.+-]+@[\w.-]+")
MATRIX_RE = re.compile(r"@[\w_.=/-]+:[\w.-]+(:\d+)?")
WEB_ADDRESS_RE = re.compile(names.PATTERN.strip("^$"))
IRC_NICK_RE = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,49}")
# Team destinations (fmn.core.owners): an IRC channel (RFC 2812: no space, comma, colon or
# BEL), a Matrix room by id or alias. A mailing list is an email address.
IRC_CHANNEL_RE = re.compile(r"[#&][^\x00-\x20,:\x07]{1,49}")
MATRIX_ROOM_RE = re.compile(r"[!#][\w_.=/+-]+:[\w.-]+(:\d+)?")
ADDRESS_PATTERNS = {
    "email": (EMAIL_RE,),
    "irc": (IRC_NICK_RE, IRC_CHANNEL_RE),
    "matrix": (MATRIX_RE, MATRIX_ROOM_RE),
    "web": (WEB_ADDRESS_RE,),
}

# A name: no control characters, so nothing can smuggle a line break into a header or an IRC line.
Name = Annotated[
    str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[^\x00-\x1f\x7f]+$")
]
# A rule's name and a topic filter may be "": FMN 3's web app sends that when the field is
# cleared, and FMN 3 keeps it, meaning no name / no topic filter.
OptionalText = Annotated[str, Field(max_length=MAX_NAME_LENGTH, pattern=r"^[^\x00-\x1f\x7f]*$")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArtifactRef(Model):
    name: Name
    type: ArtifactType


class ArtifactsOwned(Model):
    name: Literal["artifacts-owned"]
    params: list[Name] = Field(max_length=MAX_LIST_LENGTH)


class ArtifactsGroupOwned(Model):
    name: Literal["artifacts-group-owned"]
    params: list[Name] = Field(max_length=MAX_LIST_LENGTH)


class ArtifactsFollowed(Model):
    name: Literal["artifacts-followed"]
    params: list[ArtifactRef] = Field(max_length=MAX_LIST_LENGTH)


class RelatedEvents(Model):
    name: Literal["related-events"]
    # Unused; FMN 3 accepts a string here (its web app may send ""), so it is kept as sent.
    params: Annotated[str, Field(max_length=MAX_NAME_LENGTH)] | None = None


class UsersFollowed(Model):
    name: Literal["users-followed"]
    params: list[Name] = Field(max_length=MAX_LIST_LENGTH)


# fmn's own tracking rules, beyond FMN 3's five (FMN 3's clients do not know them: the rules list
# shows them only to clients that ask, see docs/decisions.md).


def application_key(name: str) -> str:
    """An application name as FMN 3's `applications` filter compares it (ignoring case): the
    filter, the `applications` tracking rule and the archive all compare these."""
    return name.lower()


class Applications(Model):
    """Every message of these applications (compared as the `applications` filter compares)."""

    name: Literal["applications"]
    params: list[Name] = Field(min_length=1, max_length=MAX_LIST_LENGTH)


TopicPattern = Annotated[
    str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[^\x00-\x20\x7f]+$")
]


class Topics(Model):
    """Every message whose topic one of these patterns matches (the `topic` filter's fnmatch
    over the whole topic)."""

    name: Literal["topics"]
    params: list[TopicPattern] = Field(min_length=1, max_length=MAX_LIST_LENGTH)


class ProjectRef(Model):
    forge: Name
    name: Name

    @field_validator("forge")
    @classmethod
    def _known_forge(cls, value: str) -> str:
        if value not in FORGES:
            raise ValueError(f"unknown forge {value!r}; known: {', '.join(sorted(FORGES))}")
        return value


class ProjectsFollowed(Model):
    """Issues, pull requests, commits and changes of these projects on their forges."""

    name: Literal["projects-followed"]
    params: list[ProjectRef] = Field(min_length=1, max_length=MAX_LIST_LENGTH)


TrackingRule = Annotated[
    ArtifactsOwned
    | ArtifactsGroupOwned
    | ArtifactsFollowed
    | RelatedEvents
    | UsersFollowed
    | Applications
    | Topics
    | ProjectsFollowed,
    Field(discriminator="name"),
]
# The tracking rules FMN 3 has: its clients' models take no other.
FMN3_TRACKING_RULE_NAMES = (
    "artifacts-owned",
    "artifacts-group-owned",
    "artifacts-followed",
    "related-events",
    "users-followed",
)
TRACKING_RULE_NAMES = (*FMN3_TRACKING_RULE_NAMES, "applications", "topics", "projects-followed")


def matches_every_topic(pattern: str) -> bool:
    """Whether a topic pattern lets every topic through (`*`, `**`, `?*`, ...)."""
    return "*" in pattern and set(pattern) <= {"*", "?"}


Severity = Literal["debug", "info", "warning", "error"]


class Filters(Model):
    applications: list[Name] = Field(default_factory=list, max_length=MAX_LIST_LENGTH)
    excluded_applications: list[Name] = Field(default_factory=list, max_length=MAX_LIST_LENGTH)
    severities: list[Severity] = Field(default_factory=list)
    topic: OptionalText | None = None
    my_actions: bool = False

    @field_validator("severities", mode="before")
    @classmethod
    def _lower_severities(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [v.lower() if isinstance(v, str) else v for v in value]
        return value


FILTER_NAMES = tuple(Filters.model_fields)


class Destination(Model):
    # "web": the inbox in the web app; its address is the rule owner's username (the API
    # accepts no other), which FMN 3's clients read as any other address.
    protocol: Literal["email", "irc", "matrix", "web"]
    address: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)

    @field_validator("address")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        if re.search(r"[\x00-\x1f\x7f]", value):
            raise ValueError("the address contains control characters")
        return value

    @model_validator(mode="after")
    def _address_fits_protocol(self) -> Destination:
        patterns = ADDRESS_PATTERNS[self.protocol]
        if not any(p.fullmatch(self.address) for p in patterns):
            raise ValueError(f"address {self.address!r} is not a valid {self.protocol} address")
        return self


class GenerationRule(Model):
    id: int | None = None
    destinations: list[Destination] = Field(min_length=1, max_length=20)
    filters: Filters = Field(default_factory=Filters)


class UserRef(Model):
    id: int | None = None
    name: Name
    is_admin: bool = False


class RuleBase(Model):
    name: OptionalText | None = None
    disabled: bool = False
    tracking_rule: TrackingRule
    generation_rules: list[GenerationRule] = Field(min_length=1, max_length=20)


class RuleCreate(RuleBase):
    """A new rule, as POSTed to the API."""


class RuleUpdate(RuleBase):
    """A full replacement of a rule, as PUT to the API (FMN 3 sends the whole rule back)."""

    model_config = ConfigDict(extra="ignore")
    id: int | None = None


class Rule(RuleBase):
    """A rule as the API returns it, and as `fmn rules export` writes it."""

    id: int
    user: UserRef
    generated_last_week: int = 0
