"""The messages fmn publishes on the bus: a rule was created, changed or deleted.

Same body as FMN 3's fmn-messages ({rule: {id, name}, user: {name}}), so consumers written for
FMN 3 read them, but each class carries its own topic (FMN 3's create message used the update
topic). Registered as `fedora.messages` entry points under names of their own ("fmn.api.*"),
so they do not replace fmn-messages' classes in fedora-messaging's registry.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fedora_messaging import message

_RULE = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "description": "The rule's id"},
        "name": {"type": ["string", "null"], "description": "The rule's name"},
    },
    "required": ["id", "name"],
}
_USER = {
    "type": "object",
    "properties": {"name": {"type": "string", "description": "The rule owner's username"}},
    "required": ["name"],
}


def _body_schema(description: str) -> dict[str, Any]:
    return {
        "id": "http://fedoraproject.org/message-schema/fmn",
        "$schema": "http://json-schema.org/draft-04/schema#",
        "description": description,
        "type": "object",
        "properties": {"rule": _RULE, "user": _USER},
        "required": ["rule", "user"],
    }


class RuleMessage(message.Message):
    """Common part: the app, the owner as agent and user, a one-line summary."""

    verb: ClassVar[str] = "changed"

    @property
    def app_name(self) -> str:
        return "FMN"

    @property
    def agent_name(self) -> str | None:
        return self.username

    @property
    def usernames(self) -> list[str]:
        return [self.username] if self.username else []

    @property
    def username(self) -> str | None:
        name = self.body.get("user", {}).get("name")
        return name if isinstance(name, str) else None

    @property
    def summary(self) -> str:
        rule = self.body.get("rule", {})
        label = f"{rule.get('id')}" + (f" ({rule['name']})" if rule.get("name") else "")
        return f"{self.username} {self.verb} the notification rule {label}"

    def __str__(self) -> str:
        return self.summary


class RuleCreateV1(RuleMessage):
    topic = "fmn.rule.create.v1"
    verb = "created"
    body_schema = _body_schema("A notification rule was created")


class RuleUpdateV1(RuleMessage):
    topic = "fmn.rule.update.v1"
    verb = "updated"
    body_schema = _body_schema("A notification rule was updated")


class RuleDeleteV1(RuleMessage):
    topic = "fmn.rule.delete.v1"
    verb = "deleted"
    body_schema = _body_schema("A notification rule was deleted")


RULE_MESSAGES: dict[str, type[RuleMessage]] = {
    "create": RuleCreateV1,
    "update": RuleUpdateV1,
    "delete": RuleDeleteV1,
}


def rule_message(action: str, rule_id: int, rule_name: str | None, username: str) -> RuleMessage:
    """A validated message for a rule change ("create", "update" or "delete")."""
    msg = RULE_MESSAGES[action](
        body={"rule": {"id": rule_id, "name": rule_name}, "user": {"name": username}}
    )
    # fedora-messaging guesses the package from the module name, which FMN 3's fmn-messages
    # shares ("fmn"): name ours.
    msg._headers["fedora_messaging_schema_package"] = "fmn"
    msg.validate()
    return msg
