"""fmn's own tracking rules (applications, topics, projects-followed) on real bus messages:
ansible playbook runs, bodhi pushes, wiki edits, pagure.io issues and pull requests."""

from __future__ import annotations

import copy
import fnmatch
from typing import Any

import pytest
from pydantic import ValidationError

from fmn.rules.incoming import parse_message
from fmn.rules.index import TopicIndex
from fmn.rules.schema import Rule
from tests.rules.conftest import BODHI, KOJI, PAGURE, make_rule, notified

ANSIBLE = "schema-tests-fedorainfra-ansible-messages.jsonl"
FEDMSG = "fedmsg-meta-fedora-infrastructure.jsonl"


def on_pagure_io(message: dict[str, Any]) -> dict[str, Any]:
    """A pagure-messages example as pagure.io sends it (its production topic prefix)."""
    message = copy.deepcopy(message)
    message["topic"] = "io.pagure.prod." + message["topic"]
    return message


async def test_applications_fires_for_every_message_of_the_application(build_index, corpus_message):
    # Compared as FMN 3's applications filter compares: ignoring case.
    index = await build_index(make_rule("alice", "applications", ["Ansible"], rule_id=1))
    playbook = corpus_message(ANSIBLE, "ansible.playbook.complete")

    assert notified(index, playbook) == {"email:alice@example.org": [1]}
    assert notified(index, corpus_message(ANSIBLE, "ansible.playbook.start")) == {
        "email:alice@example.org": [1]
    }
    assert notified(index, corpus_message(BODHI, "bodhi.update.edit")) == {}


async def test_applications_rule_applies_its_filters(build_index, corpus_message):
    index = await build_index(
        make_rule("bob", "applications", ["bodhi"], filters={"topic": "bodhi.compose.*"}, rule_id=2)
    )

    assert notified(index, corpus_message(BODHI, "bodhi.compose.complete")) == {
        "email:bob@example.org": [2]
    }
    assert notified(index, corpus_message(BODHI, "bodhi.update.edit")) == {}


async def test_topics_fires_for_bodhi_pushes_on_the_production_topic(build_index, corpus_message):
    index = await build_index(
        make_rule("carol", "topics", ["org.fedoraproject.prod.bodhi.compose.*"], rule_id=3),
        make_rule("dave", "topics", ["*.bodhi.update.request.*"], rule_id=4),
    )
    compose = corpus_message(BODHI, "bodhi.compose.complete")
    compose["topic"] = "org.fedoraproject.prod.bodhi.compose.complete"
    request = corpus_message(BODHI, "bodhi.update.request.testing")
    request["topic"] = "org.fedoraproject.prod.bodhi.update.request.testing"

    assert notified(index, compose) == {"email:carol@example.org": [3]}
    assert notified(index, request) == {"email:dave@example.org": [4]}
    # The pattern covers the whole topic: without the prefix it does not match.
    assert notified(index, corpus_message(BODHI, "bodhi.compose.complete")) == {}


async def test_topics_fires_for_wiki_edits_without_a_schema(build_index, corpus_message):
    index = await build_index(make_rule("alice", "topics", ["org.fedoraproject.*.wiki.*"]))
    upload = corpus_message(FEDMSG, "org.fedoraproject.stg.wiki.upload.complete")
    trac = corpus_message(FEDMSG, "org.fedoraproject.prod.trac.wiki.page.rename")

    assert list(notified(index, upload)) == ["email:alice@example.org"]
    # fnmatch's * crosses dots, as in FMN 3's topic filter.
    assert list(notified(index, trac)) == ["email:alice@example.org"]


async def test_projects_followed_fires_for_pagure_io_issues_and_pull_requests(
    build_index, corpus_message
):
    index = await build_index(
        make_rule(
            "bob",
            "projects-followed",
            [
                {"forge": "pagure.io", "name": "pagure"},
                {"forge": "pagure.io", "name": "fedora-infra/fedocal-messages"},
            ],
            rule_id=5,
        ),
    )
    pull_request = on_pagure_io(corpus_message(PAGURE, "pagure.pull-request.new"))
    comment = on_pagure_io(corpus_message(PAGURE, "pagure.pull-request.comment.added"))
    issue = on_pagure_io(corpus_message(PAGURE, "pagure.issue.new"))
    tag = on_pagure_io(corpus_message(PAGURE, "pagure.project.tag.edited"))

    for message in (pull_request, comment, issue, tag):
        assert notified(index, message) == {"email:bob@example.org": [5]}, message["topic"]


async def test_projects_followed_tells_pagure_io_from_dist_git(build_index, corpus_message):
    index = await build_index(
        make_rule("bob", "projects-followed", [{"forge": "pagure.io", "name": "pagure"}])
    )
    # The same schema on src.fedoraproject.org's topics, with its URLs, is not pagure.io's.
    dist_git = corpus_message(PAGURE, "pagure.pull-request.new")
    dist_git["topic"] = "org.fedoraproject.prod.pagure.pull-request.new"
    # A fork is someone's copy, not the project.
    fork = on_pagure_io(corpus_message(PAGURE, "pagure.project.forked"))

    assert notified(index, dist_git) == {}
    assert notified(index, fork) == {}


async def test_projects_followed_reads_the_project_url_too(build_index, corpus_message):
    index = await build_index(
        make_rule("bob", "projects-followed", [{"forge": "pagure.io", "name": "pagure"}])
    )
    message = corpus_message(PAGURE, "pagure.pull-request.new")
    project = message["body"]["pullrequest"]["project"]
    project["full_url"] = project["full_url"].replace(
        "http://localhost.localdomain", "https://pagure.io"
    )

    assert list(notified(index, message)) == ["email:bob@example.org"]


async def test_changed_topic_rules_are_seen_by_the_next_message(build_index, corpus_message):
    playbook = corpus_message(ANSIBLE, "ansible.playbook.complete")
    index = await build_index(make_rule("alice", "topics", ["koji.*"], rule_id=8))
    assert notified(index, playbook) == {}  # the answer for this topic is kept...

    await index.upsert_rule(make_rule("alice", "topics", ["ansible.*"], rule_id=8))
    assert notified(index, playbook) == {"email:alice@example.org": [8]}  # ...until a change

    await index.remove_rule(8)
    assert notified(index, playbook) == {}


async def test_new_kinds_combine_with_the_others_in_one_notification(build_index, corpus_message):
    index = await build_index(
        make_rule("alice", "applications", ["koji"], rule_id=10),
        make_rule("alice", "topics", ["buildsys.build.*"], rule_id=11),
    )
    build = corpus_message(KOJI, "buildsys.build.state.change")

    assert notified(index, build) == {"email:alice@example.org": [10, 11]}


@pytest.mark.parametrize(
    ("tracking", "params", "field"),
    [
        ("applications", [], "params"),
        ("topics", [], "params"),
        ("topics", ["bad topic"], "params.0"),
        ("projects-followed", [], "params"),
        ("projects-followed", [{"forge": "github.com", "name": "x"}], "params.0.forge"),
    ],
)
def test_bad_params_are_refused_naming_the_field(
    tracking: str, params: list[Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        make_rule("alice", tracking, params)
    locations = [".".join(map(str, e["loc"])) for e in caught.value.errors()]
    assert f"tracking_rule.{tracking}.{field}" in locations


def test_topic_index_finds_what_fnmatch_finds(corpus: dict[str, list[dict[str, Any]]]) -> None:
    topics = sorted({m["topic"] for messages in corpus.values() for m in messages})
    patterns = [
        "*",
        "bodhi.*",
        "org.fedoraproject.prod.bodhi.update.*",
        "org.fedoraproject.prod.bodhi.upd*",
        "*.bodhi.update.*",
        "*.comment",
        "*bodhi*",
        "io.pagure.*.pagure.issue.?ew",
        "org.fedoraproject.[ps]*.ansible.*",
        "*.[a-z]ansible.*",
        "buildsys.build.state.change",
        "pagure.issue.new",
    ]
    index: TopicIndex[str] = TopicIndex()
    for pattern in patterns:
        index.add(pattern, pattern)
    for topic in topics:
        expected = {p for p in patterns if fnmatch.fnmatchcase(topic, p)}
        assert index.find(topic) == expected, topic
    for pattern in patterns:
        index.discard(pattern, pattern)
    assert not index
    assert all(index.find(topic) == set() for topic in topics)


def test_rule_json_keeps_fmn3_shape() -> None:
    rule = make_rule("alice", "projects-followed", [{"forge": "pagure.io", "name": "fesco"}])
    data = rule.model_dump(mode="json")
    assert data["tracking_rule"] == {
        "name": "projects-followed",
        "params": [{"forge": "pagure.io", "name": "fesco"}],
    }
    assert Rule.model_validate(data) == rule


def test_parsed_pagure_io_message_names_its_project(corpus_message) -> None:
    issue = parse_message(on_pagure_io(corpus_message(PAGURE, "pagure.issue.new")))
    assert issue.forge_projects == ("pagure.io:fedora-infra/fedocal-messages",)
