"""Reading bus messages: schema classes, the header fallback, and every kind of bad input."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from fedora_messaging import message as fm

from fmn.rules import incoming as message_module
from fmn.rules.incoming import BadMessage, parse_message
from tests.rules.conftest import BODHI, HOTNESS, PAGURE, make_rule, notified


def test_a_known_schema_gives_its_properties(corpus_message):
    raw = corpus_message(BODHI, "bodhi.update.edit")
    raw["headers"]["sent-at"] = "2024-05-01T10:20:30+00:00"

    parsed = parse_message(raw)

    assert parsed.known_schema
    assert (parsed.app_name, parsed.agent_name) == ("bodhi", "ralph")
    assert parsed.packages == ("tzdata",)
    assert parsed.artifact_paths == ("rpms/tzdata",)
    assert parsed.usernames == ("ralph",)
    assert parsed.severity == fm.INFO
    assert parsed.sent_at == dt.datetime(2024, 5, 1, 10, 20, 30, tzinfo=dt.UTC)
    assert "tzdata" in parsed.summary
    assert parsed.url.startswith("https://bodhi.fedoraproject.org/updates/")
    assert parsed.validation_error is None


def test_a_fedora_messaging_message_object_reads_the_same(corpus_message):
    raw = corpus_message(BODHI, "bodhi.update.edit")
    loaded = fm.load_message(raw)

    parsed = parse_message(loaded)

    assert parsed.id == raw["id"]
    assert (parsed.packages, parsed.agent_name, parsed.app_name) == (
        ("tzdata",),
        "ralph",
        "bodhi",
    )


def test_an_unknown_schema_matches_on_its_filter_headers():
    parsed = parse_message(
        {
            "id": "x1",
            "topic": "org.fedoraproject.prod.newapp.thing",
            "headers": {
                "fedora_messaging_schema": "newapp.thing.v1",
                "fedora_messaging_user_alice": True,
                "fedora_messaging_group_go-sig": True,
                "fedora_messaging_rpm_tzdata": True,
                "fedora_messaging_container_chromium": True,
                "fedora_messaging_module_perl": True,
                "fedora_messaging_flatpak_firefox": True,
                "fedora_messaging_rpm_not-set": False,
            },
            "body": {},
        }
    )

    assert not parsed.known_schema
    assert parsed.usernames == ("alice",)
    assert parsed.groups == ("go-sig",)
    assert parsed.artifact_paths == (
        "rpms/tzdata",
        "containers/chromium",
        "modules/perl",
        "flatpaks/firefox",
    )
    assert parsed.app_name is None
    assert parsed.summary == "org.fedoraproject.prod.newapp.thing"


async def test_unknown_schema_message_reaches_owners_through_headers(build_index):
    index = await build_index(
        make_rule("alice", "artifacts-owned", ["alice"], rule_id=1),
        make_rule("dave", "artifacts-owned", ["dave"], rule_id=2),
    )
    message = {
        "id": "x2",
        "topic": "newapp.build.done",
        "headers": {
            "fedora_messaging_schema": "newapp.v1",
            "fedora_messaging_container_chromium": True,
        },
        "body": {},
    }
    assert notified(index, message) == {"email:dave@example.org": [2]}


def test_a_fedmsg_era_message_without_headers_carries_only_its_topic(corpus):
    raw = dict(corpus["fedmsg-meta-fedora-infrastructure.jsonl"][1])

    parsed = parse_message(raw)

    assert parsed.topic == raw["topic"]
    assert parsed.usernames == () and parsed.artifact_paths == ()
    # fedmsg's envelope timestamp stands in for the missing sent-at header.
    assert parsed.sent_at == dt.datetime.fromtimestamp(raw["headers"]["timestamp"], tz=dt.UTC)


def test_a_summary_that_raises_falls_back_to_the_topic_and_is_logged_once(corpus_message, caplog):
    # pagure-messages' IssueAssignedAddedV1.summary raises TypeError on this real body.
    raw = corpus_message(PAGURE, "pagure.issue.assigned.added")
    parsed = parse_message(raw)

    with caplog.at_level(logging.WARNING, logger="fmn.rules.incoming"):
        assert parsed.summary == "pagure.issue.assigned.added"
        assert parsed.summary == "pagure.issue.assigned.added"
        text = parsed.text

    assert raw["id"] in text  # the raw dump, since str() raises too
    summary_logs = [r for r in caplog.records if "summary raised" in r.getMessage()]
    assert len(summary_logs) == 1 and raw["id"] in summary_logs[0].getMessage()
    assert parsed.usernames == ("astepano", "dummy-user")


def test_a_list_property_that_raises_falls_back_to_the_headers(corpus_message, monkeypatch):
    raw = corpus_message(BODHI, "bodhi.update.edit")
    base = message_module.message_class(raw["headers"]["fedora_messaging_schema"])

    class Broken(base):  # type: ignore[misc, valid-type]
        @property
        def packages(self):
            raise KeyError("builds")

    monkeypatch.setitem(message_module._classes, "test.broken.v1", Broken)
    raw["headers"].update(
        fedora_messaging_schema="test.broken.v1", fedora_messaging_rpm_tzdata=True
    )

    parsed = parse_message(raw)

    assert parsed.packages == ("tzdata",)
    assert parsed.agent_name == "ralph"


def test_names_that_are_not_strings_are_dropped(corpus_message):
    # the-new-hotness' UpdateDrop.usernames is [None] for this real message.
    parsed = parse_message(corpus_message(HOTNESS, "org.fedoraproject.prod.hotness.update.drop"))
    assert parsed.usernames == ()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (["a", "list"], "must be a JSON object"),
        ({"id": "m1", "body": {}}, "topic"),
        ({"id": "m1", "topic": 42, "body": {}}, "topic"),
        ({"id": "m1", "topic": "t", "body": ["not", "an", "object"]}, "body is list"),
        ({"id": "m1", "topic": "t"}, "body is NoneType"),
        ({"id": "m1", "topic": "t", "body": {}, "headers": "x=1"}, "headers"),
    ],
)
def test_what_is_not_a_message_raises_bad_message(data, problem):
    with pytest.raises(BadMessage, match=problem):
        parse_message(data)


def test_headers_of_the_wrong_type_fall_back(caplog):
    with caplog.at_level(logging.WARNING, logger="fmn.rules.incoming"):
        parsed = parse_message(
            {
                "id": "m2",
                "topic": "t.x",
                "headers": {
                    "fedora_messaging_schema": 12,
                    "fedora_messaging_severity": "loud",
                    "sent-at": 1700000000,
                    "fedora_messaging_rpm_tzdata": "yes",
                },
                "body": {},
            }
        )
    assert parsed.severity == fm.INFO
    assert parsed.schema is None
    assert abs(parsed.sent_at - dt.datetime.now(tz=dt.UTC)) < dt.timedelta(minutes=1)
    assert parsed.packages == ()
    assert len([r for r in caplog.records if "m2" in r.getMessage()]) == 1


def test_a_message_without_id_gets_the_same_derived_id_each_time():
    message = {"topic": "t.x", "body": {"a": 1}}
    other = {"topic": "t.x", "body": {"a": 2}}

    assert parse_message(message).id == parse_message(dict(message)).id
    assert parse_message(message).id != parse_message(other).id


def test_a_multi_megabyte_body_parses(corpus_message):
    raw = corpus_message(BODHI, "bodhi.update.edit")
    raw["body"]["update"]["notes"] = "x" * 5_000_000

    parsed = parse_message(raw)

    assert parsed.packages == ("tzdata",)
    assert parsed.validation_error is None


async def test_a_body_failing_its_schema_notifies_nobody(build_index, corpus_message):
    index = await build_index(make_rule("alice", "artifacts-owned", ["alice"]))
    raw = corpus_message(BODHI, "bodhi.update.edit")
    raw["body"]["new_bugs"] = "not a list"

    parsed = parse_message(raw)

    assert parsed.packages == ("tzdata",)  # still readable...
    assert "new_bugs" in parsed.validation_error  # ...but not what bodhi publishes
    assert notified(index, parsed) == {}


async def test_odd_topic_characters_are_carried_as_they_are(build_index):
    topic = "org.example.weird\r\n\x00ü.[*].topic"
    index = await build_index(
        make_rule("alice", "artifacts-owned", ["alice"], filters={"topic": "*ü.[[]*"})
    )
    message = {
        "id": "odd",
        "topic": topic,
        "headers": {"fedora_messaging_rpm_tzdata": True},
        "body": {},
    }

    assert parse_message(message).topic == topic
    assert list(notified(index, message)) == ["email:alice@example.org"]
