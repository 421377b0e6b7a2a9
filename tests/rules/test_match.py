"""match_messages: the function `fmn match` and the API's rule preview share."""

from __future__ import annotations

import pytest
from fedora_messaging import message as fm

from fmn.directory.base import DirectoryUnavailable
from fmn.rules.incoming import parse_message
from fmn.rules.match import match_messages
from tests.rules.conftest import BODHI, make_rule


async def test_takes_dicts_messages_and_parsed_messages_and_reports_bad_ones(
    directory, corpus_message
):
    raw = corpus_message(BODHI, "bodhi.update.edit")
    rules = [make_rule("alice", "artifacts-owned", ["alice"], rule_id=1)]

    results = await match_messages(
        rules,
        [raw, fm.load_message(raw), parse_message(raw), {"id": "bad", "topic": "t", "body": 3}],
        directory,
    )

    assert [r.message_id for r in results] == [raw["id"]] * 3 + ["bad"]
    assert [r.to_json()["notifications"] for r in results[:3]] == [
        [{"protocol": "email", "address": "alice@example.org", "rules": [1]}]
    ] * 3
    assert results[3].matches == [] and "body is int" in results[3].error


async def test_a_directory_failure_is_not_an_empty_preview(directory, corpus_message):
    directory.failing = True
    with pytest.raises(DirectoryUnavailable):
        await match_messages(
            [make_rule("alice", "artifacts-owned", ["alice"])],
            [corpus_message(BODHI, "bodhi.update.edit")],
            directory,
        )
