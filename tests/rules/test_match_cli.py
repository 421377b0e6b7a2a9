"""`fmn match`, end to end: FMN 3 rules, recorded messages, a directory file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fmn.cli import cli
from fmn.core import settings as settings_module
from tests.conftest import DATA_DIR
from tests.rules.conftest import BODHI, DIRECTORY_FILE, PAGURE

RULES_FILE = DATA_DIR / "rules" / "rules.json"


@pytest.fixture
def messages_file(tmp_path: Path, corpus_message) -> Path:
    lines = [
        json.dumps(corpus_message(BODHI, "bodhi.update.edit")),  # tzdata, by ralph
        json.dumps(
            corpus_message(BODHI, "bodhi.update.status.testing.koji-build-group.build.complete")
        ),
        json.dumps(corpus_message(PAGURE, "pagure.pull-request.new")),
        "",
        "{not json",
        json.dumps({"id": "no-body", "topic": "t"}),
        json.dumps(corpus_message(PAGURE, "pagure.project.tag.removed")),
    ]
    path = tmp_path / "messages.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["match", *args], env=env)


def test_prints_one_line_per_message_with_deduplicated_notifications(messages_file):
    result = run(
        "--rules",
        str(RULES_FILE),
        "--messages",
        str(messages_file),
        "--directory",
        str(DIRECTORY_FILE),
    )

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("notifications") for line in lines] == [
        [
            {"protocol": "email", "address": "alice@example.org", "rules": [1, 2]},
            {"protocol": "matrix", "address": "@alice:fedora.im", "rules": [2]},
        ],
        [{"protocol": "irc", "address": "bob", "rules": [3]}],
        [{"protocol": "email", "address": "jjames@example.org", "rules": [5]}],
        [],
        [],
        [],
    ]
    assert lines[0]["message_id"] == f"{BODHI}:10"
    assert lines[3]["error"].startswith("line 5: not JSON")
    assert lines[4] == {
        "message_id": "no-body",
        "notifications": [],
        "error": "message no-body: the body is NoneType, not an object",
    }


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not JSON"),
        ('{"id": 1}', "a JSON list of rules"),
        (
            '[{"id": 1, "user": {"name": "a"}, "tracking_rule": {"name": "everything"},'
            ' "generation_rules": [{"destinations": [{"protocol": "email",'
            ' "address": "a@b.c"}]}]}]',
            "rule 1 (id 1): tracking_rule: unknown tracking rule 'everything'",
        ),
        (
            '[{"id": 7, "user": {"name": "a"}, "tracking_rule": {"name": "related-events"},'
            ' "generation_rules": [{"destinations": [{"protocol": "fax", "address": "1"}]}]}]',
            "rule 1 (id 7): generation_rules.0.destinations.0.protocol",
        ),
    ],
)
def test_a_bad_rule_file_is_one_clear_line_and_a_failure(tmp_path, messages_file, content, problem):
    rules = tmp_path / "RULES.json"
    rules.write_text(content)

    result = run(
        "--rules", str(rules), "--messages", str(messages_file), "--directory", str(DIRECTORY_FILE)
    )

    assert result.exit_code != 0
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert str(rules) in line and problem in line


def test_a_bad_directory_file_is_a_clear_error(tmp_path, messages_file):
    directory = tmp_path / "DIRECTORY.json"
    directory.write_text('{"users": [], "planets": {}}')

    result = run(
        "--rules", str(RULES_FILE), "--messages", str(messages_file), "--directory", str(directory)
    )

    assert result.exit_code != 0
    assert str(directory) in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def configured_directory(monkeypatch):
    """Runs `fmn match` without --directory, the settings naming a local directory file."""

    def run_with(local_file: Path, messages_file: Path):
        monkeypatch.setenv("FMN_DIRECTORY__LOCAL_FILE", str(local_file))
        monkeypatch.delenv("FMN_CONFIG", raising=False)
        settings_module.get_settings.cache_clear()
        try:
            return run("--rules", str(RULES_FILE), "--messages", str(messages_file))
        finally:
            settings_module.get_settings.cache_clear()

    return run_with


def test_without_directory_option_uses_the_configured_directory(
    messages_file, configured_directory
):
    result = configured_directory(DIRECTORY_FILE, messages_file)

    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout.splitlines()[0])
    assert [n["address"] for n in first["notifications"]] == [
        "alice@example.org",
        "@alice:fedora.im",
    ]


def test_an_unreadable_configured_directory_is_a_clear_error(
    tmp_path, messages_file, configured_directory
):
    result = configured_directory(tmp_path / "missing.json", messages_file)

    assert result.exit_code != 0
    assert "the configured directory" in result.stderr and "missing.json" in result.stderr


def test_the_fmn_command_runs_it(messages_file):
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "fmn"),
            "match",
            "--rules",
            str(RULES_FILE),
            "--directory",
            str(DIRECTORY_FILE),
            "--messages",
            "-",
        ],
        input=messages_file.read_text(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert len(completed.stdout.splitlines()) == 6


def test_understands_fmn_own_kinds(tmp_path, corpus_message):
    rules = json.loads(RULES_FILE.read_text())[:1]
    rules = [
        {**rules[0], "id": 1, "tracking_rule": {"name": "applications", "params": ["pagure"]}},
        {**rules[0], "id": 2, "tracking_rule": {"name": "topics", "params": ["io.pagure.*"]}},
        {
            **rules[0],
            "id": 3,
            "tracking_rule": {
                "name": "projects-followed",
                "params": [{"forge": "pagure.io", "name": "pagure"}],
            },
        },
    ]
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps(rules))
    pull_request = corpus_message(PAGURE, "pagure.pull-request.new")
    pull_request["topic"] = "io.pagure.prod." + pull_request["topic"]
    messages = tmp_path / "messages.jsonl"
    messages.write_text(json.dumps(pull_request) + "\n")

    result = run(
        "--rules", str(rules_file), "--messages", str(messages), "--directory", str(DIRECTORY_FILE)
    )

    assert result.exit_code == 0, result.output
    (line,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert [n["rules"] for n in line["notifications"]] == [[1, 2, 3]]
