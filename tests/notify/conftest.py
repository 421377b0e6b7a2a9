"""The rule engine's fixtures: notifications are written for what it matched."""

from tests.rules.conftest import build_index, corpus_message, directory

__all__ = ["build_index", "corpus_message", "directory"]
