"""The five filters of a generation rule, on real bus messages (FMN 3's semantics)."""

from __future__ import annotations

import pytest

from fmn.rules.incoming import parse_message
from tests.rules.conftest import BODHI, KOJI, PAGURE, make_rule, notified

TZDATA_EDIT = (BODHI, "bodhi.update.edit")  # app "bodhi", agent ralph, severity info
TZDATA_KARMA = (BODHI, "bodhi.update.karma.threshold.reach")  # same package, no agent
LIBSELINUX_DEBUG = (BODHI, "bodhi.update.status.testing.koji-build-group.build.complete")


def unknown_schema_tzdata_message() -> dict:
    """A message whose schema is not installed: no app_name, tzdata only in the headers."""
    return {
        "id": "unknown-1",
        "topic": "org.fedoraproject.prod.newapp.thing.happened",
        "headers": {
            "fedora_messaging_schema": "newapp.thing.v1",
            "fedora_messaging_rpm_tzdata": True,
        },
        "body": {"anything": "at all"},
    }


async def alice_with(build_index, **filters):
    return await build_index(make_rule("alice", "artifacts-owned", ["alice"], filters=filters))


@pytest.mark.parametrize(
    ("applications", "expected"),
    [([], True), (["bodhi"], True), (["BODHI", "koji"], True), (["Koji"], False)],
)
async def test_applications_compare_case_insensitively(
    build_index, corpus_message, applications, expected
):
    index = await alice_with(build_index, applications=applications)
    assert bool(notified(index, corpus_message(*TZDATA_EDIT))) is expected


async def test_applications_filter_fails_a_message_without_app_name(build_index):
    with_filter = await alice_with(build_index, applications=["bodhi"])
    without_filter = await alice_with(build_index)

    assert notified(with_filter, unknown_schema_tzdata_message()) == {}
    assert notified(without_filter, unknown_schema_tzdata_message()) != {}


async def test_excluded_applications_drop_listed_apps_only(build_index, corpus_message):
    index = await alice_with(build_index, excluded_applications=["Bodhi"])
    chromium_build = corpus_message(KOJI, "buildsys.build.state.change", packages=("chromium",))

    assert notified(index, corpus_message(*TZDATA_EDIT)) == {}
    assert notified(index, chromium_build) != {}
    # No app_name: nothing to exclude (FMN 3 raised AttributeError here).
    assert notified(index, unknown_schema_tzdata_message()) != {}


async def test_default_severities_leave_out_debug(build_index, corpus_message):
    default = await build_index(make_rule("bob", "artifacts-group-owned", ["selinux-sig"]))
    with_debug = await build_index(
        make_rule(
            "bob", "artifacts-group-owned", ["selinux-sig"], filters={"severities": ["DEBUG"]}
        )
    )

    assert notified(default, corpus_message(*LIBSELINUX_DEBUG)) == {}
    assert notified(with_debug, corpus_message(*LIBSELINUX_DEBUG)) != {}


async def test_severities_are_an_exact_set(build_index, corpus_message):
    errors_only = await alice_with(build_index, severities=["error"])
    assert notified(errors_only, corpus_message(*TZDATA_EDIT)) == {}


async def test_my_actions_false_drops_the_owners_own_actions(build_index, corpus_message):
    own_comment = corpus_message(PAGURE, "pagure.pull-request.comment.added", agent_name="jjames")
    default = await build_index(make_rule("jjames", "related-events"))
    mine_too = await build_index(
        make_rule("jjames", "related-events", filters={"my_actions": True}, rule_id=4)
    )

    assert notified(default, own_comment) == {}
    assert notified(mine_too, own_comment) == {"email:jjames@example.org": [4]}


async def test_my_actions_counts_per_message_and_rule_owner_among_messages_of_one_kind(
    build_index, corpus_message
):
    # The same filters for both rules, and two messages that differ only in their agent.
    jjames_comments = parse_message(
        corpus_message(PAGURE, "pagure.pull-request.comment.added", agent_name="jjames")
    )
    ralph_comments = parse_message(
        corpus_message(PAGURE, "pagure.pull-request.comment.added", agent_name="jjames")
    )
    ralph_comments.agent_name = "ralph"
    index = await build_index(
        make_rule("jjames", "related-events", rule_id=1),
        make_rule("ralph", "users-followed", ["jjames"], rule_id=2),
    )

    assert notified(index, jjames_comments) == {"email:ralph@example.org": [2]}
    assert notified(index, ralph_comments) == {"email:jjames@example.org": [1]}
    assert notified(index, jjames_comments) == {"email:ralph@example.org": [2]}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("bodhi.update.*", True),
        ("*update*", True),
        ("bodhi.update.?dit", True),
        ("update", False),  # a glob over the whole topic, not a substring (FMN 3 #1108)
        ("Bodhi.*", False),  # case-sensitive
        ("bodhi.update.[!e]*", False),
        ("", True),  # a cleared topic field, as FMN 3's web app sends it: no topic filter
        (None, True),
    ],
)
async def test_topic_is_a_glob_over_the_whole_topic(build_index, corpus_message, pattern, expected):
    index = await alice_with(build_index, topic=pattern)
    assert bool(notified(index, corpus_message(*TZDATA_EDIT))) is expected


async def test_all_filters_of_a_generation_rule_must_pass(build_index, corpus_message):
    index = await alice_with(build_index, applications=["bodhi"], topic="*.karma.*")

    assert notified(index, corpus_message(*TZDATA_EDIT)) == {}
    assert notified(index, corpus_message(*TZDATA_KARMA)) != {}


async def test_each_generation_rule_sends_to_its_own_destinations(build_index, corpus_message):
    # carol follows alice's and plautrba's packages: debug by mail, the rest on IRC.
    rule = make_rule(
        "carol",
        "artifacts-owned",
        ["alice", "plautrba"],
        rule_id=11,
        generation_rules=[
            {
                "destinations": [{"protocol": "email", "address": "carol@example.org"}],
                "filters": {"severities": ["debug"]},
            },
            {
                "destinations": [{"protocol": "irc", "address": "carol"}],
                "filters": {"severities": ["info", "warning", "error"]},
            },
        ],
    )
    index = await build_index(rule)

    assert notified(index, corpus_message(*LIBSELINUX_DEBUG)) == {"email:carol@example.org": [11]}
    assert notified(index, corpus_message(*TZDATA_EDIT)) == {"irc:carol": [11]}
