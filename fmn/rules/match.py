"""Matching a batch of messages against a set of rules, offline: `fmn match` and the API's rule
preview run this same code, on the same index the consumer uses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fedora_messaging import message as fm

from fmn.directory.base import Directory
from fmn.rules.incoming import BadMessage, ParsedMessage, parse_message
from fmn.rules.index import Match, RuleIndex
from fmn.rules.schema import Rule

MessageInput = Mapping[str, Any] | fm.Message | ParsedMessage


@dataclass
class MessageResult:
    message_id: str | None
    matches: list[Match] = field(default_factory=list)
    message: ParsedMessage | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "notifications": [
                {"protocol": m.protocol, "address": m.address, "rules": m.rule_ids}
                for m in sorted(self.matches)
            ],
        }
        if self.error is not None:
            data["error"] = self.error
        return data


def match_one(index: RuleIndex, data: MessageInput) -> MessageResult:
    """Parse (unless parsed already) and match one message; a bad one gives an error result."""
    if isinstance(data, ParsedMessage):
        parsed = data
    else:
        try:
            parsed = parse_message(data)
        except BadMessage as exc:
            given_id = data.get("id") if isinstance(data, Mapping) else None
            return MessageResult(
                message_id=given_id if isinstance(given_id, str) else None, error=str(exc)
            )
    return MessageResult(message_id=parsed.id, matches=index.match(parsed), message=parsed)


async def match_messages(
    rules: Iterable[Rule], messages: Iterable[MessageInput], directory: Directory
) -> list[MessageResult]:
    """Which destinations each message would notify, and by which rules.

    Raises DirectoryUnavailable if ownership cannot be read: a preview must not say "nothing"
    because the directory was down.
    """
    index = RuleIndex(directory)
    await index.build(rules)
    return [match_one(index, message) for message in messages]
