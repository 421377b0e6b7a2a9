"""The archive's keys (fmn.archive), which the consumer writes and previews ask for: they must
agree, or a preview misses messages. These need no service."""

from __future__ import annotations

from typing import Any

from fmn.archive import AGENT_KIND, USER_KIND, match_keys, path_keys
from fmn.rules.incoming import parse_message


def test_a_message_is_found_by_every_key_a_preview_asks_for_it(
    corpus: dict[str, list[dict[str, Any]]],
) -> None:
    checked = 0
    for name, messages in corpus.items():
        for number, raw in enumerate(messages):
            parsed = parse_message({**raw, "id": f"{name}:{number}"})
            written = set(match_keys(parsed))
            # What a preview asks for, for artifacts followed or owned: their dist-git paths.
            asked = {
                (k, v) for k, values in path_keys(parsed.artifact_paths).items() for v in values
            }
            assert asked <= written, (name, number)
            # For related events and users followed: the user, the agent.
            assert {(USER_KIND, user) for user in parsed.usernames} <= written
            if parsed.agent_name:
                assert (AGENT_KIND, parsed.agent_name) in written
            checked += bool(asked)
    assert checked >= 20  # the corpus has messages about artifacts


def test_paths_of_other_namespaces_have_no_keys() -> None:
    assert path_keys(["rpms/foo", "containers/bar", "tests/baz", "rpms/", "noslash"]) == {
        "package": {"foo"},
        "container": {"bar"},
    }
