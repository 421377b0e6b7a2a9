"""Fixtures for the rule engine: a directory whose users own the corpus messages' packages
(tests/data/rules/directory.json), rules in FMN 3's API shape, and real corpus messages."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from fmn.directory.base import DirectoryUnavailable
from fmn.directory.local import DirectoryData, LocalDirectory
from fmn.rules.incoming import ParsedMessage, parse_message
from fmn.rules.index import RuleIndex
from fmn.rules.schema import Rule
from tests.conftest import DATA_DIR

DIRECTORY_FILE = DATA_DIR / "rules" / "directory.json"
_ids = itertools.count(1000)


class EditableDirectory:
    """The local directory, which a test can change (as dist-git or FASJSON would) or make fail."""

    def __init__(self) -> None:
        self.data = DirectoryData.from_file(DIRECTORY_FILE)
        self.local = LocalDirectory(self.data)
        self.failing = False
        self.calls: list[str] = []

    def changed(self) -> None:
        self.local = LocalDirectory(self.data)

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.local, name)

        async def call(*args: Any) -> Any:
            self.calls.append(name)
            if self.failing:
                raise DirectoryUnavailable(f"{name}: FASJSON is down")
            return await method(*args)

        return call


@pytest.fixture
def directory() -> EditableDirectory:
    return EditableDirectory()


def make_rule(
    user: str,
    tracking: str,
    params: Any = None,
    *,
    filters: dict[str, Any] | None = None,
    destinations: list[tuple[str, str]] | None = None,
    rule_id: int | None = None,
    name: str | None = None,
    disabled: bool = False,
    generation_rules: list[dict[str, Any]] | None = None,
) -> Rule:
    """A rule as the API returns it; by default one generation rule mailing the owner."""
    if generation_rules is None:
        generation_rules = [
            {
                "destinations": [
                    {"protocol": p, "address": a}
                    for p, a in destinations or [("email", f"{user}@example.org")]
                ],
                "filters": filters or {},
            }
        ]
    return Rule.model_validate(
        {
            "id": rule_id if rule_id is not None else next(_ids),
            "name": name,
            "disabled": disabled,
            "user": {"name": user},
            "tracking_rule": {"name": tracking, "params": params},
            "generation_rules": generation_rules,
        }
    )


@pytest.fixture
def corpus_message(
    corpus: dict[str, list[dict[str, Any]]],
) -> Callable[..., dict[str, Any]]:
    """A copy of the first corpus message of a file with that topic (and those properties)."""

    def pick(filename: str, topic: str, **expect: Any) -> dict[str, Any]:
        for number, raw in enumerate(corpus[filename]):
            if raw["topic"] != topic:
                continue
            message = copy.deepcopy(raw)
            message["id"] = f"{filename}:{number}"
            parsed = parse_message(message)
            if all(getattr(parsed, key) == value for key, value in expect.items()):
                return message
        raise LookupError(f"no {topic} message with {expect} in {filename}")

    return pick


@pytest.fixture
def build_index(directory: EditableDirectory) -> Callable[..., Awaitable[RuleIndex]]:
    async def build(*rules: Rule) -> RuleIndex:
        index = RuleIndex(directory)
        await index.build(rules)
        return index

    return build


def notified(index: RuleIndex, message: dict[str, Any] | ParsedMessage) -> dict[str, list[int]]:
    """{"protocol:address": [rule ids]} for one message."""
    parsed = message if isinstance(message, ParsedMessage) else parse_message(message)
    return {f"{m.protocol}:{m.address}": m.rule_ids for m in index.match(parsed)}


BODHI = "schema-tests-bodhi-messages.jsonl"
KOJI = "schema-tests-koji-fedoramessaging-messages.jsonl"
PAGURE = "schema-tests-pagure-messages.jsonl"
BUGZILLA = "schema-tests-bugzilla2fedmsg-schema.jsonl"
DISCOURSE = "schema-tests-discourse2fedmsg-messages.jsonl"
HOTNESS = "schema-tests-fedora-messaging-the-new-hotness-schema.jsonl"
