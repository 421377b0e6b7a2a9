"""The five tracking rules, on real bus messages, with ownership from the test directory."""

from __future__ import annotations

from tests.rules.conftest import BODHI, DISCOURSE, KOJI, PAGURE, make_rule, notified


async def test_artifacts_owned_matches_packages_the_named_user_owns(build_index, corpus_message):
    # alice is the owner of rpms/tzdata and a committer of rpms/chromium.
    index = await build_index(make_rule("alice", "artifacts-owned", ["alice"], rule_id=1))
    tzdata_edit = corpus_message(BODHI, "bodhi.update.edit")
    chromium_build = corpus_message(KOJI, "buildsys.build.state.change", packages=("chromium",))
    xstream_eject = corpus_message(BODHI, "bodhi.update.eject")

    assert notified(index, tzdata_edit) == {"email:alice@example.org": [1]}
    assert notified(index, chromium_build) == {"email:alice@example.org": [1]}
    assert notified(index, xstream_eject) == {}


async def test_artifacts_owned_can_follow_someone_elses_packages(build_index, corpus_message):
    index = await build_index(make_rule("carol", "artifacts-owned", ["alice", "eclipseo"]))
    go_update = corpus_message(BODHI, "bodhi.update.complete.testing")

    assert list(notified(index, corpus_message(BODHI, "bodhi.update.edit"))) == [
        "email:carol@example.org"
    ]
    assert list(notified(index, go_update)) == ["email:carol@example.org"]


async def test_artifacts_owned_ignores_ticket_roles_and_other_namespaces(
    build_index, corpus_message
):
    # carol only has the "ticket" role on rpms/libsepol; dave owns containers/chromium,
    # not the chromium rpm this koji build is about.
    index = await build_index(
        make_rule("carol", "artifacts-owned", ["carol"], filters={"severities": ["debug"]}),
        make_rule("dave", "artifacts-owned", ["dave"]),
    )
    libsepol = corpus_message(BODHI, "bodhi.update.status.testing.koji-build-group.build.complete")
    chromium_build = corpus_message(KOJI, "buildsys.build.state.change", packages=("chromium",))

    assert notified(index, libsepol) == {}
    assert notified(index, chromium_build) == {}


async def test_artifacts_group_owned_matches_packages_of_the_group(build_index, corpus_message):
    # go-sig has commit on golang-github-SAP-go-hdb; only the ticket role on xstream.
    index = await build_index(make_rule("carol", "artifacts-group-owned", ["go-sig"], rule_id=7))

    go_update = corpus_message(BODHI, "bodhi.update.complete.testing")
    assert notified(index, go_update) == {"email:carol@example.org": [7]}
    assert notified(index, corpus_message(BODHI, "bodhi.update.eject")) == {}
    assert notified(index, corpus_message(BODHI, "bodhi.update.edit")) == {}


async def test_artifacts_followed_matches_by_name_and_type(build_index, corpus_message):
    index = await build_index(
        make_rule("dave", "artifacts-followed", [{"name": "xstream", "type": "rpms"}], rule_id=3),
        # A container of the same name as a package is another artifact.
        make_rule("carol", "artifacts-followed", [{"name": "xstream", "type": "containers"}]),
    )

    assert notified(index, corpus_message(BODHI, "bodhi.update.eject")) == {
        "email:dave@example.org": [3]
    }
    assert notified(index, corpus_message(BODHI, "bodhi.update.edit")) == {}


async def test_related_events_matches_when_the_owner_is_among_the_message_users(
    build_index, corpus_message
):
    index = await build_index(make_rule("jjames", "related-events", rule_id=5))
    pull_request = corpus_message(PAGURE, "pagure.pull-request.new")  # dummy-user opened it
    project_tag = corpus_message(PAGURE, "pagure.project.tag.removed")  # jjames not involved

    assert notified(index, pull_request) == {"email:jjames@example.org": [5]}
    assert notified(index, project_tag) == {}


async def test_users_followed_matches_the_agent_only(build_index, corpus_message):
    index = await build_index(make_rule("dave", "users-followed", ["ralph", "awarda"], rule_id=9))
    by_ralph = corpus_message(BODHI, "bodhi.update.edit")
    # karma.threshold.reach is about ralph's update, but nobody (agent None) caused it.
    ralph_not_agent = corpus_message(BODHI, "bodhi.update.karma.threshold.reach")
    by_awarda = corpus_message(DISCOURSE, "org.fedoraproject.prod.discourse.topic.topic_edited")

    assert notified(index, by_ralph) == {"email:dave@example.org": [9]}
    assert notified(index, ralph_not_agent) == {}
    assert notified(index, by_awarda) == {"email:dave@example.org": [9]}


async def test_disabled_rules_are_not_indexed(build_index, corpus_message):
    index = await build_index(make_rule("alice", "artifacts-owned", ["alice"], disabled=True))

    assert len(index) == 0
    assert notified(index, corpus_message(BODHI, "bodhi.update.edit")) == {}
