"""The index: de-duplication, gone users, deprecated messages, and incremental updates."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fmn.directory.base import DirectoryUnavailable
from fmn.directory.changes import directory_change
from fmn.rules import incoming as message_module
from fmn.rules.incoming import parse_message
from fmn.rules.index import RuleIndex
from tests.rules.conftest import BODHI, KOJI, PAGURE, make_rule, notified

TZDATA_EDIT = (BODHI, "bodhi.update.edit")  # tzdata (alice's), agent ralph, users [ralph]
GO_UPDATE = (BODHI, "bodhi.update.complete.testing")  # golang-github-SAP-go-hdb (go-sig's)


@dataclass(frozen=True)
class Change:
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset()


async def test_one_notification_per_destination_with_every_rule_that_asked(
    build_index, corpus_message
):
    index = await build_index(
        make_rule("alice", "artifacts-owned", ["alice"], rule_id=1),
        make_rule("alice", "users-followed", ["ralph"], rule_id=2),
        make_rule(
            "alice",
            "artifacts-followed",
            [{"name": "tzdata", "type": "rpms"}],
            rule_id=3,
            destinations=[("email", "alice@example.org"), ("matrix", "@alice:fedora.im")],
        ),
        make_rule("dave", "users-followed", ["ralph"], rule_id=4),
    )

    assert notified(index, corpus_message(*TZDATA_EDIT)) == {
        "email:alice@example.org": [1, 2, 3],
        "email:dave@example.org": [4],
        "matrix:@alice:fedora.im": [3],
    }


async def test_two_generation_rules_to_the_same_destination_notify_once(
    build_index, corpus_message
):
    gr = {"destinations": [{"protocol": "irc", "address": "alice"}], "filters": {}}
    index = await build_index(
        make_rule("alice", "artifacts-owned", ["alice"], rule_id=1, generation_rules=[gr, gr])
    )
    assert notified(index, corpus_message(*TZDATA_EDIT)) == {"irc:alice": [1]}


async def test_rules_of_users_gone_from_the_directory_produce_nothing(
    build_index, corpus_message, directory
):
    index = await build_index(
        make_rule("ghost", "artifacts-followed", [{"name": "tzdata", "type": "rpms"}], rule_id=1),
        make_rule("alice", "artifacts-owned", ["alice"], rule_id=2),
    )
    assert notified(index, corpus_message(*TZDATA_EDIT)) == {"email:alice@example.org": [2]}
    assert index.gone_users == {"ghost"}

    directory.data.users["ghost"] = {"username": "ghost", "emails": ["ghost@example.org"]}
    directory.changed()
    await index.refresh_user("ghost")

    assert notified(index, corpus_message(*TZDATA_EDIT)) == {
        "email:alice@example.org": [2],
        "email:ghost@example.org": [1],
    }


async def test_a_user_leaving_the_directory_stops_their_rules(
    build_index, corpus_message, directory
):
    index = await build_index(make_rule("alice", "artifacts-owned", ["alice"]))
    del directory.data.users["alice"]
    directory.changed()

    await index.apply_directory_change(Change(users=frozenset({"alice"})))

    assert notified(index, corpus_message(*TZDATA_EDIT)) == {}


async def test_deprecated_messages_are_skipped(build_index, corpus_message, monkeypatch):
    raw = corpus_message(*TZDATA_EDIT)
    current = message_module.message_class(raw["headers"]["fedora_messaging_schema"])

    class Deprecated(current):  # type: ignore[misc, valid-type]
        deprecated = True

    monkeypatch.setitem(message_module._classes, "bodhi.update.edit.v0", Deprecated)
    index = await build_index(make_rule("alice", "artifacts-owned", ["alice"]))
    old = dict(raw, headers={**raw["headers"], "fedora_messaging_schema": "bodhi.update.edit.v0"})

    assert notified(index, raw) != {}
    assert notified(index, old) == {}


async def test_matching_never_asks_the_directory(build_index, corpus_message, directory):
    index = await build_index(
        make_rule("alice", "artifacts-owned", ["alice"]),
        make_rule("carol", "artifacts-group-owned", ["go-sig"]),
    )
    directory.calls.clear()
    directory.failing = True

    assert notified(index, corpus_message(*TZDATA_EDIT)) != {}
    assert notified(index, corpus_message(*GO_UPDATE)) != {}
    assert directory.calls == []


async def test_set_user_rules_replaces_that_users_rules_only(build_index, corpus_message):
    index = await build_index(
        make_rule("alice", "artifacts-owned", ["alice"], rule_id=1),
        make_rule("dave", "users-followed", ["ralph"], rule_id=2),
    )

    await index.set_user_rules(
        "alice", [make_rule("alice", "artifacts-group-owned", ["go-sig"], rule_id=3)]
    )

    assert notified(index, corpus_message(*TZDATA_EDIT)) == {"email:dave@example.org": [2]}
    assert notified(index, corpus_message(*GO_UPDATE)) == {"email:alice@example.org": [3]}
    assert sorted(r.id for r in map(index.rule, (1, 2, 3)) if r) == [2, 3]


async def test_set_user_rules_refuses_someone_elses_rules(build_index):
    index = await build_index()
    with pytest.raises(ValueError, match="dave"):
        await index.set_user_rules("alice", [make_rule("dave", "related-events")])


async def test_upsert_and_remove_one_rule(build_index, corpus_message):
    index = await build_index(make_rule("alice", "artifacts-owned", ["alice"], rule_id=1))

    await index.upsert_rule(
        make_rule("alice", "artifacts-owned", ["alice"], rule_id=1, filters={"topic": "koji.*"})
    )
    assert notified(index, corpus_message(*TZDATA_EDIT)) == {}

    await index.upsert_rule(make_rule("alice", "artifacts-owned", ["alice"], rule_id=1))
    assert notified(index, corpus_message(*TZDATA_EDIT)) != {}

    await index.upsert_rule(
        make_rule("alice", "artifacts-owned", ["alice"], rule_id=1, disabled=True)
    )
    assert notified(index, corpus_message(*TZDATA_EDIT)) == {}

    await index.upsert_rule(make_rule("alice", "artifacts-owned", ["alice"], rule_id=1))
    assert await index.remove_rule(1)
    assert not await index.remove_rule(1)
    assert notified(index, corpus_message(*TZDATA_EDIT)) == {}
    assert index.stats()["expanded_users"] == 0  # nothing kept for a rule that is gone


async def test_a_project_changing_hands_is_re_expanded(build_index, corpus_message, directory):
    index = await build_index(
        make_rule("alice", "artifacts-owned", ["alice"], rule_id=1),
        make_rule("bob", "artifacts-owned", ["bob"], rule_id=2),
    )
    directory.data.projects["rpms/tzdata"].access_users = {"owner": ["bob"]}
    directory.changed()

    await index.apply_directory_change(Change(projects=frozenset({"rpms/tzdata"})))

    assert notified(index, corpus_message(*TZDATA_EDIT)) == {"email:bob@example.org": [2]}


async def test_a_dist_git_access_message_re_expands_the_project(
    build_index, corpus_message, directory
):
    """The consumer's path: directory_change() on the bus message, then the index."""
    index = await build_index(make_rule("bob", "artifacts-owned", ["bob"], rule_id=2))
    # A real pagure-messages body, about a dist-git package instead of a pagure.io project.
    message = corpus_message(PAGURE, "pagure.project.user.access.updated")
    message["body"]["new_user"] = "bob"
    message["body"]["project"].update(
        fullname="rpms/tzdata",
        namespace="rpms",
        name="tzdata",
        full_url="https://src.fedoraproject.org/rpms/tzdata",
    )
    directory.data.projects["rpms/tzdata"].access_users["commit"] = ["bob"]
    directory.changed()

    change = directory_change(message["topic"], message["body"])
    await index.apply_directory_change(change)

    assert notified(index, corpus_message(*TZDATA_EDIT)) == {"email:bob@example.org": [2]}


async def test_a_group_gaining_a_project_is_re_expanded(build_index, corpus_message, directory):
    index = await build_index(make_rule("bob", "artifacts-group-owned", ["selinux-sig"], rule_id=1))
    chromium = corpus_message(KOJI, "buildsys.build.state.change", packages=("chromium",))
    assert notified(index, chromium) == {}

    directory.data.projects["rpms/chromium"].access_groups = {"commit": ["selinux-sig"]}
    directory.changed()
    await index.refresh_group("selinux-sig")

    assert notified(index, chromium) == {"email:bob@example.org": [1]}


async def test_a_user_gaining_a_project_is_re_expanded(build_index, corpus_message, directory):
    index = await build_index(make_rule("bob", "artifacts-owned", ["bob"], rule_id=1))
    directory.data.projects["rpms/xstream"].access_users["admin"] = ["bob"]
    directory.changed()

    await index.refresh_user("bob")

    assert notified(index, corpus_message(BODHI, "bodhi.update.eject")) == {
        "email:bob@example.org": [1]
    }


async def test_directory_unavailable_propagates_and_changes_nothing(
    build_index, corpus_message, directory
):
    index = await build_index(make_rule("alice", "artifacts-owned", ["alice"], rule_id=1))
    directory.failing = True

    with pytest.raises(DirectoryUnavailable):
        await index.set_user_rules("alice", [make_rule("alice", "artifacts-owned", ["bob"])])
    with pytest.raises(DirectoryUnavailable):
        await index.refresh_project("rpms/tzdata")
    with pytest.raises(DirectoryUnavailable):
        await RuleIndex(directory).build([make_rule("carol", "artifacts-group-owned", ["go-sig"])])

    # Still as before: a failed look-up did not turn into "not owned".
    assert notified(index, corpus_message(*TZDATA_EDIT)) == {"email:alice@example.org": [1]}


async def test_projects_outside_dist_git_namespaces_are_not_looked_up(build_index, directory):
    index = await build_index(make_rule("alice", "artifacts-owned", ["alice"]))
    directory.calls.clear()

    await index.refresh_project("fedora-infra/fmn")

    assert directory.calls == []


async def test_candidates_ignore_filters(build_index, corpus_message):
    index = await build_index(
        make_rule("alice", "artifacts-owned", ["alice"], rule_id=1, filters={"topic": "nope"})
    )
    parsed = parse_message(corpus_message(*TZDATA_EDIT))

    assert index.candidates(parsed) == {1}
    assert index.match(parsed) == []


def tzdata_on_the_same_topic(topic: str, severity: int | None = None) -> dict:
    """A message about tzdata on a given topic, from a schema that is not installed (so no
    application), at a given severity."""
    headers: dict = {
        "fedora_messaging_schema": "newapp.thing.v1",
        "fedora_messaging_rpm_tzdata": True,
    }
    if severity is not None:
        headers["fedora_messaging_severity"] = severity
    return {"topic": topic, "headers": headers, "body": {}}


async def test_messages_on_one_topic_are_each_filtered_by_their_own_severity_and_application(
    build_index, corpus_message
):
    # The filters' verdicts are kept per kind of message: one that differs only in severity or
    # application must still be judged on its own, whichever comes first.
    tzdata = [{"name": "tzdata", "type": "rpms"}]
    index = await build_index(
        make_rule("alice", "artifacts-followed", tzdata, rule_id=1),
        make_rule(
            "bob", "artifacts-followed", tzdata, rule_id=2, filters={"applications": ["bodhi"]}
        ),
    )
    bodhi_edit = corpus_message(*TZDATA_EDIT)
    unknown_app = tzdata_on_the_same_topic(bodhi_edit["topic"])
    debug = tzdata_on_the_same_topic(bodhi_edit["topic"], severity=10)

    for _ in range(2):
        assert notified(index, bodhi_edit) == {
            "email:alice@example.org": [1],
            "email:bob@example.org": [2],
        }
        assert notified(index, unknown_app) == {"email:alice@example.org": [1]}
        assert notified(index, debug) == {}
    assert notified(index, unknown_app) == {"email:alice@example.org": [1]}
