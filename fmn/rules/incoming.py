"""Bus messages read once into a light ParsedMessage the rule engine can match quickly.

Messages are read through fedora-messaging's schema classes (the `fedora.messages` entry points),
chosen by the `fedora_messaging_schema` header exactly as fedora-messaging does, never by topic.
A message whose schema is not installed still carries its topic and the filter headers the
publisher wrote (`fedora_messaging_user_<name>`, `fedora_messaging_rpm_<name>`, ...): those stand
in for the schema's lists. A schema property that raises never escapes: the value falls back to
what the headers say (lists) or to a neutral default, and the problem is logged once per message.

What only a notification needs (summary, long text, url, body validation) is computed on first
use, so a message no rule is interested in costs little more than its match keys.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jsonschema
import jsonschema_rs
import pika
from fedora_messaging import message as fm

from fmn.rules.forges import project_keys
from fmn.rules.schema import ARTIFACT_ATTRIBUTES, application_key

# A message's severity by the names rules use for it (filters) and notifications show.
SEVERITY_LEVELS = {"debug": fm.DEBUG, "info": fm.INFO, "warning": fm.WARNING, "error": fm.ERROR}
SEVERITY_NAMES = {level: name for name, level in SEVERITY_LEVELS.items()}

log = logging.getLogger(__name__)

_LIST_ATTRIBUTES = ("usernames", "groups", "packages", "containers", "modules", "flatpaks")
# The namespaces of _LIST_ATTRIBUTES[2:], in their order (ARTIFACT_ATTRIBUTES).
_ARTIFACT_NAMESPACES = tuple(ARTIFACT_ATTRIBUTES[a] for a in _LIST_ATTRIBUTES[2:])
_PACKAGE_PATH = ARTIFACT_ATTRIBUTES["packages"] + "/"
# The word fedora-messaging uses in its filter headers -> message attribute.
_HEADER_WORD_TO_ATTRIBUTE = {
    "user": "usernames",
    "group": "groups",
    "rpm": "packages",
    "container": "containers",
    "module": "modules",
    "flatpak": "flatpaks",
}
_FILTER_HEADER_RE = re.compile(
    r"fedora_messaging_(user|group|rpm|container|module|flatpak)_(.+)", re.S
)
_MAX_SCHEMA_NAMES_CACHED = 10_000
# Fixed namespace so that a message without an id always gets the same derived one.
_ID_NAMESPACE = uuid.UUID("6f1c1a52-3c53-4e4b-9a57-46b7c0a5b1f0")


class BadMessage(ValueError):
    """The input is not a bus message at all (no topic, a body that is not an object, ...)."""


_classes: dict[str, type[fm.Message]] = {}


def message_class(schema_name: str) -> type[fm.Message]:
    """The schema class for a header value; fedora-messaging's base Message when not installed.

    fedora-messaging logs a warning for an unknown schema on every look-up; asking it once per
    name keeps that to one line per unknown schema.
    """
    cls = _classes.get(schema_name)
    if cls is None:
        cls = fm.get_class(schema_name)
        if len(_classes) < _MAX_SCHEMA_NAMES_CACHED:
            _classes[schema_name] = cls
    return cls


class _Validators:
    """Body-schema validators compiled once per schema object (jsonschema-rs, jsonschema as
    a fallback for a schema it cannot compile)."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[dict[str, Any], Callable[[Any], str | None]]] = {}

    def error(self, schema: dict[str, Any], body: Any) -> str | None:
        cached = self._cache.get(id(schema))
        if cached is None or cached[0] is not schema:
            cached = (schema, self._compile(schema))
            self._cache[id(schema)] = cached
        return cached[1](body)

    @staticmethod
    def _compile(schema: dict[str, Any]) -> Callable[[Any], str | None]:
        try:
            # fedora-messaging validates with jsonschema's defaults: formats are not checked.
            fast = jsonschema_rs.validator_for(schema, validate_formats=False)
        except Exception:  # a schema jsonschema-rs refuses; jsonschema may still take it
            slow = jsonschema.validators.validator_for(schema)(schema)

            def check_slowly(body: Any) -> str | None:
                err = jsonschema.exceptions.best_match(slow.iter_errors(body))
                return None if err is None else f"{err.message} at /{'/'.join(map(str, err.path))}"

            return check_slowly

        def check(body: Any) -> str | None:
            try:
                fast.validate(body)
            except jsonschema_rs.ValidationError as exc:
                return f"{exc.message} at /{'/'.join(map(str, exc.instance_path))}"
            return None

        return check


_validators = _Validators()


class ParsedMessage:
    """What the rule engine needs from one bus message; summary, text and url on demand."""

    __slots__ = (
        "_body_checked",
        "_message",
        "_summary",
        "_text",
        "_url",
        "_validation_error",
        "agent_name",
        "app_key",
        "app_name",
        "artifact_paths",
        "containers",
        "deprecated",
        "flatpaks",
        "forge_projects",
        "groups",
        "id",
        "known_schema",
        "modules",
        "packages",
        "schema",
        "sent_at",
        "severity",
        "topic",
        "usernames",
    )

    id: str
    topic: str
    schema: str | None
    known_schema: bool
    sent_at: dt.datetime
    severity: int
    app_name: str | None
    # app_name as the rules compare it (schema.application_key), read once per message.
    app_key: str | None
    agent_name: str | None
    usernames: tuple[str, ...]
    groups: tuple[str, ...]
    packages: tuple[str, ...]
    containers: tuple[str, ...]
    modules: tuple[str, ...]
    flatpaks: tuple[str, ...]
    artifact_paths: tuple[str, ...]
    # Keys of the forge projects the message is about ("pagure.io:fesco", fmn.rules.forges).
    forge_projects: tuple[str, ...]
    deprecated: bool
    _message: fm.Message
    _summary: str | None
    _url: str | None
    _text: str | None
    _validation_error: str | None
    _body_checked: bool

    def __repr__(self) -> str:
        return f"ParsedMessage(id={self.id!r}, topic={self.topic!r}, schema={self.schema!r})"

    @property
    def severity_name(self) -> str:
        return SEVERITY_NAMES.get(self.severity, str(self.severity))

    @property
    def body(self) -> Mapping[str, Any]:
        return self._message.body

    @property
    def headers(self) -> dict[str, Any]:
        headers: dict[str, Any] = self._message._headers
        return headers

    @property
    def summary(self) -> str:
        if self._summary is None:
            value = self._read("summary")
            self._summary = value if isinstance(value, str) and value else self.topic
        return self._summary

    @property
    def url(self) -> str | None:
        if self._url is None:
            value = self._read("url")
            self._url = value if isinstance(value, str) else ""
        return self._url or None

    @property
    def text(self) -> str:
        """The long form, `str(message)` as the schema writes it."""
        if self._text is None:
            try:
                value = str(self._message)
            except Exception as exc:
                self._log_problem(f"str() raised {exc!r}; using the raw body")
                value = _raw_text(self)
            self._text = value
        return self._text

    @property
    def validation_error(self) -> str | None:
        """Why the body fails its schema, or None. Checked on first use only: fedora-messaging
        checks every message, fmn only those some rule is interested in."""
        if not self._body_checked:
            self._body_checked = True
            if self.known_schema:
                try:
                    schema = self._message.body_schema
                    self._validation_error = _validators.error(schema, self._message.body)
                except Exception as exc:
                    self._validation_error = f"the schema could not be checked: {exc!r}"
        return self._validation_error

    def _read(self, attribute: str) -> Any:
        try:
            return getattr(self._message, attribute)
        except Exception as exc:
            self._log_problem(f"{attribute} raised {exc!r}")
            return None

    def _log_problem(self, problem: str) -> None:
        log.warning("message %s (schema %s): %s", self.id, self.schema, problem)


def _raw_text(message: ParsedMessage) -> str:
    body = json.dumps(message.body, sort_keys=True, indent=4, default=str)
    return f"Id: {message.id}\nTopic: {message.topic}\nBody: {body}"


def parse_message(data: Mapping[str, Any] | fm.Message) -> ParsedMessage:
    """Read a fedora-messaging Message, or its serialized form {topic, headers, id, body}.

    Raises BadMessage when `data` cannot be a bus message at all; anything a schema gets wrong
    falls back (see the module docstring).
    """
    if isinstance(data, fm.Message):
        return _from_message(data, validated=True)
    if not isinstance(data, Mapping):
        raise BadMessage(f"a message must be a JSON object, not {type(data).__name__}")
    topic = data.get("topic")
    body = data.get("body")
    headers = data.get("headers")
    message_id = _message_id(data, headers)
    if not isinstance(topic, str):
        raise BadMessage(f"message {message_id}: the topic is missing or not a string")
    if not isinstance(body, dict):
        raise BadMessage(f"message {message_id}: the body is {type(body).__name__}, not an object")
    if headers is None:
        headers = {}
    elif not isinstance(headers, dict):
        raise BadMessage(f"message {message_id}: the headers are not an object")

    problems: list[str] = []
    schema_name = headers.get("fedora_messaging_schema")
    if schema_name is not None and not isinstance(schema_name, str):
        problems.append("the fedora_messaging_schema header is not a string")
        schema_name = None
    cls = message_class(schema_name) if schema_name else fm.Message
    severity = headers.get("fedora_messaging_severity")
    if severity is not None and severity not in fm.SEVERITIES:
        problems.append(f"ignored the severity header {severity!r}")
        severity = None
    properties = pika.BasicProperties(headers=headers, message_id=message_id)
    try:
        message = cls(body=body, topic=topic, properties=properties, severity=severity)
    except Exception as exc:
        problems.append(f"{cls.__name__}() raised {exc!r}; read as a schema-less message")
        cls = fm.Message
        message = fm.Message(body=body, topic=topic, properties=properties, severity=severity)
    return _fill(message, cls, schema_name, headers, problems, validated=False)


def _from_message(message: fm.Message, validated: bool) -> ParsedMessage:
    headers = message._headers
    schema_name = headers.get("fedora_messaging_schema")
    if not isinstance(schema_name, str):
        schema_name = None
    if message.id is None:
        message.id = _message_id({"topic": message.topic, "body": message.body}, headers)
    return _fill(message, type(message), schema_name, headers, [], validated)


def _message_id(data: Mapping[str, Any], headers: Any) -> str:
    value = data.get("id")
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(headers, dict) and isinstance(headers.get("msg_id"), str):
        return str(headers["msg_id"])  # fedmsg-era envelopes
    # No id at all: derive one from the content so the same message keeps the same id
    # (idempotency keys are built from it).
    try:
        content = json.dumps([data.get("topic"), data.get("body")], sort_keys=True, default=str)
    except (TypeError, ValueError):
        content = repr((data.get("topic"), data.get("body")))
    return str(uuid.uuid5(_ID_NAMESPACE, content))


def _fill(
    message: fm.Message,
    cls: type[fm.Message],
    schema_name: str | None,
    headers: Mapping[str, Any],
    problems: list[str],
    validated: bool,
) -> ParsedMessage:
    parsed = ParsedMessage()
    parsed._message = message
    parsed._summary = None
    parsed._url = None
    parsed._text = None
    parsed._validation_error = None
    parsed._body_checked = validated
    parsed.id = message.id
    parsed.topic = message.topic
    parsed.schema = schema_name
    # A known schema is any class but the base one, unless the base one was asked for by name.
    known = cls is not fm.Message or schema_name == "base.message"
    parsed.known_schema = known
    parsed.deprecated = getattr(cls, "deprecated", False) is True
    parsed.sent_at = _sent_at(headers, problems)
    parsed.severity = _severity(message, problems)

    from_headers = None if known else _lists_from_headers(headers)
    lists: list[tuple[str, ...]] = []
    for attribute in _LIST_ATTRIBUTES:
        if from_headers is None:
            try:
                value = getattr(message, attribute)
            except Exception as exc:
                problems.append(f"{attribute} raised {exc!r}; read the headers instead")
                value = _lists_from_headers(headers).get(attribute, ())
        else:
            value = from_headers.get(attribute, ())
        # What schemas return, a list of names (most often empty), is read the fast way; else
        # made safe.
        if not value:
            lists.append(())
        elif type(value) is list and all(type(item) is str and item for item in value):
            lists.append(tuple(dict.fromkeys(value)))
        else:
            lists.append(_safe_names(value, attribute, problems))
    parsed.usernames, parsed.groups, packages, containers, modules, flatpaks = lists
    parsed.packages = packages
    parsed.containers = containers
    parsed.modules = modules
    parsed.flatpaks = flatpaks
    # Dist-git paths ("rpms/foo"): the index's keys, and the directory's.
    if containers or modules or flatpaks:
        parsed.artifact_paths = tuple(
            f"{namespace}/{name}"
            for names, namespace in zip(lists[2:], _ARTIFACT_NAMESPACES, strict=True)
            for name in names
        )
    else:
        parsed.artifact_paths = tuple([_PACKAGE_PATH + name for name in packages])
    if known:
        parsed.forge_projects = _forge_projects(message, problems)
        app_name = parsed.app_name = _optional_name(message, "app_name", problems)
        parsed.app_key = application_key(app_name) if app_name else None
        parsed.agent_name = _optional_name(message, "agent_name", problems)
    else:
        parsed.forge_projects = ()
        parsed.app_name = parsed.app_key = parsed.agent_name = None
    if problems:
        parsed._log_problem("; ".join(problems))
    return parsed


def _lists_from_headers(headers: Mapping[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in headers.items():
        if value is not True or not key.startswith("fedora_messaging_"):
            continue
        match = _FILTER_HEADER_RE.fullmatch(key)
        if match:
            found.setdefault(_HEADER_WORD_TO_ATTRIBUTE[match[1]], []).append(match[2])
    return found


def _safe_names(value: Any, attribute: str, problems: list[str]) -> tuple[str, ...]:
    """A schema's list, made safe: strings only, no duplicates, order kept."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        problems.append(f"{attribute} is a {type(value).__name__}, not a list")
        return ()
    names = [item for item in value if isinstance(item, str) and item]
    return tuple(dict.fromkeys(names))


def _forge_projects(message: fm.Message, problems: list[str]) -> tuple[str, ...]:
    try:
        return project_keys(message)
    except Exception as exc:  # a body its schema did not check yet may hold anything
        problems.append(f"the forge project could not be read: {exc!r}")
        return ()


def _optional_name(message: fm.Message, attribute: str, problems: list[str]) -> str | None:
    try:
        value = getattr(message, attribute)
    except Exception as exc:
        problems.append(f"{attribute} raised {exc!r}")
        return None
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.append(f"{attribute} is a {type(value).__name__}, not a string")
        return None
    return value


def _severity(message: fm.Message, problems: list[str]) -> int:
    try:
        value = message.severity
    except Exception as exc:
        problems.append(f"severity raised {exc!r}")
        return fm.INFO
    if value not in fm.SEVERITIES or isinstance(value, bool):
        problems.append(f"severity {value!r} is not a fedora-messaging level; using INFO")
        return fm.INFO
    return int(value)


def _sent_at(headers: Mapping[str, Any], problems: list[str]) -> dt.datetime:
    value = headers.get("sent-at")
    if isinstance(value, str):
        try:
            sent = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"unreadable sent-at header {value[:40]!r}")
        else:
            return sent if sent.tzinfo else sent.replace(tzinfo=dt.UTC)
    elif value is not None:
        problems.append("the sent-at header is not a string")
    timestamp = headers.get("timestamp")  # fedmsg-era envelopes
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        try:
            return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            problems.append("unreadable timestamp header")
    return dt.datetime.now(tz=dt.UTC)
