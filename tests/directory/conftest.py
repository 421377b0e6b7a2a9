"""The HTTP clients pointed at the test directory server (`directory_server`, tests/conftest.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fmn.core.settings import DirectorySettings
from fmn.directory.factory import make_remote_directory
from fmn.directory.remote import RemoteDirectory
from tests.conftest import DIRECTORY_SAMPLE as SAMPLE
from tests.harness.directory_server import RunningServer


def sample_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text())
    return data


def client_settings(url: str, **overrides: Any) -> DirectorySettings:
    return DirectorySettings(fasjson_url=url, distgit_url=url, **{"retries": 2, **overrides})


@pytest.fixture
async def remote(directory_server: RunningServer) -> AsyncIterator[RemoteDirectory]:
    directory = make_remote_directory(client_settings(directory_server.url), backoff=0.01)
    yield directory
    await directory.aclose()
