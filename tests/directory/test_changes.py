"""What bus messages change in the directory: real corpus messages, both body shapes."""

from __future__ import annotations

from typing import Any

import pytest

from fmn.directory.changes import NO_CHANGE, DirectoryChange, directory_change

CORPUS_DISTGIT = "http://localhost.localdomain"


def change(
    users: tuple[str, ...] = (), groups: tuple[str, ...] = (), projects: tuple[str, ...] = ()
) -> DirectoryChange:
    return DirectoryChange(frozenset(users), frozenset(groups), frozenset(projects))


def messages(corpus: dict[str, list[dict[str, Any]]], filename: str, topic: str) -> list[Any]:
    found = [m for m in corpus[filename] if m["topic"] == topic]
    assert found, f"no {topic} in {filename}"
    return found


@pytest.mark.parametrize(
    ("filename", "topic", "expected"),
    [
        ("schema-tests-noggin-messages.jsonl", "fas.user.create", change(users=("testuser",))),
        (
            "fedmsg-meta-fedora-infrastructure.jsonl",
            "org.fedoraproject.stg.fas.user.create",
            change(users=("ralph",)),
        ),
        (
            "fedmsg-meta-fedora-infrastructure.jsonl",
            "org.fedoraproject.stg.fas.group.update",
            change(groups=("ambassadors",)),
        ),
        (
            "schema-tests-pagure-messages.jsonl",
            "pagure.project.user.access.updated",
            change(users=("newu",), projects=("fedora-infra/fedocal-messages",)),
        ),
        (
            "schema-tests-pagure-messages.jsonl",
            "pagure.project.user.removed",
            change(users=("dummy",), projects=("fedora-infra/fedocal-messages",)),
        ),
        (
            "fedmsg-meta-fedora-infrastructure.jsonl",
            "io.pagure.dev.pagure.project.group.added",
            change(groups=("awesome",), projects=("foo",)),
        ),
        (
            "fedmsg-meta-fedora-infrastructure.jsonl",
            "io.pagure.dev.pagure.project.user.added",
            change(users=("ralph",), projects=("foo",)),
        ),
    ],
)
def test_corpus_messages(
    corpus: dict[str, list[dict[str, Any]]], filename: str, topic: str, expected: DirectoryChange
) -> None:
    for message in messages(corpus, filename, topic):
        assert directory_change(message["topic"], message["body"]) == expected


@pytest.mark.parametrize("prefix", ["", "org.fedoraproject.prod.", "org.fedoraproject.stg."])
def test_any_prefix(prefix: str) -> None:
    body = {"msg": {"agent": "a", "user": "u", "group": "g"}}
    expected = change(users=("u",), groups=("g",))
    assert directory_change(prefix + "fas.group.member.sponsor", body) == expected
    # Leaving a group matters as much as joining one (FMN 3 missed it).
    assert directory_change(prefix + "fas.group.member.removed", body) == expected


def test_removed_groups_list() -> None:
    body = {"project": {"fullname": "rpms/foo"}, "removed_groups": ["g1"]}
    expected = change(groups=("g1",), projects=("rpms/foo",))
    assert directory_change("pagure.project.group.removed", body) == expected


@pytest.mark.parametrize(
    "topic",
    [
        "org.fedoraproject.prod.fas.group.member.apply",  # nothing changed yet
        "org.fedoraproject.prod.pagure.project.tag.edited",
        "org.fedoraproject.prod.buildsys.build.state.change",
        "org.fedoraproject.prod.notfas.user.update",
    ],
)
def test_other_topics_change_nothing(topic: str) -> None:
    body = {"msg": {"user": "u", "group": "g"}, "new_user": "u", "project": {"fullname": "x"}}
    assert directory_change(topic, body) is NO_CHANGE


def test_forks_and_other_instances_change_nothing(corpus: dict[str, list[dict[str, Any]]]) -> None:
    topic = "pagure.project.user.access.updated"
    message = messages(corpus, "schema-tests-pagure-messages.jsonl", topic)[0]
    body = message["body"]
    assert directory_change(topic, body, distgit_url=CORPUS_DISTGIT)
    assert directory_change(topic, body, distgit_url=CORPUS_DISTGIT + "/")
    assert not directory_change(topic, body, distgit_url="https://src.fedoraproject.org")
    fork = {**body, "project": {**body["project"], "parent": {"fullname": "rpms/foo"}}}
    assert not directory_change(topic, fork, distgit_url=CORPUS_DISTGIT)


def test_malformed_bodies_change_nothing() -> None:
    assert not directory_change("fas.user.update", {"msg": {"user": 3}})
    assert not directory_change("pagure.project.user.added", {"project": "rpms/foo"})
    assert not directory_change("fas.user.update", [])  # type: ignore[arg-type]
