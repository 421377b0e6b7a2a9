"""Building the Directory a process uses, from the settings.

Two choices, on purpose no more:

- ``directory.local_file`` set and both service URLs left at their defaults: the file is read
  into a LocalDirectory, answered in memory (nothing to cache; nothing can fail).
- otherwise: FASJSON (``directory.fasjson_url``) and dist-git (``directory.distgit_url``) over
  HTTP, with ``directory.timeout``/``retries``, cached on ``cache.url`` for
  ``cache.directory_ttl`` seconds. The tests point both URLs at their directory server
  (tests/harness/directory_server.py) to run the real clients against a file.
"""

from __future__ import annotations

from typing import Any

import httpx

from fmn.core.settings import DirectorySettings, Settings
from fmn.directory.base import Directory
from fmn.directory.cache import CachedDirectory, make_cache
from fmn.directory.changes import DirectoryChange, directory_change
from fmn.directory.fasjson import FasjsonClient, default_fasjson_auth
from fmn.directory.http_client import JSONClient
from fmn.directory.local import LocalDirectory
from fmn.directory.pagure import PagureClient
from fmn.directory.remote import RemoteDirectory


def uses_local_file(settings: DirectorySettings) -> bool:
    defaults = DirectorySettings()
    return settings.local_file is not None and (
        settings.fasjson_url == defaults.fasjson_url
        and settings.distgit_url == defaults.distgit_url
    )


def make_remote_directory(
    settings: DirectorySettings,
    *,
    fasjson_auth: httpx.Auth | None = None,
    backoff: float = 0.5,
) -> RemoteDirectory:
    """The HTTP clients, uncached. `fasjson_auth` defaults to Kerberos for https URLs when
    httpx-gssapi is installed."""

    def client(url: str, auth: httpx.Auth | None = None) -> JSONClient:
        return JSONClient(
            url, timeout=settings.timeout, retries=settings.retries, backoff=backoff, auth=auth
        )

    auth = fasjson_auth or default_fasjson_auth(settings.fasjson_url)
    return RemoteDirectory(
        FasjsonClient(client(settings.fasjson_url, auth)),
        PagureClient(client(settings.distgit_url)),
    )


def make_directory(
    settings: Settings, *, fasjson_auth: httpx.Auth | None = None, backoff: float = 0.5
) -> Directory:
    """The process's Directory (see the module's docstring for the choice)."""
    if uses_local_file(settings.directory):
        assert settings.directory.local_file is not None
        return LocalDirectory.from_file(settings.directory.local_file)
    remote = make_remote_directory(settings.directory, fasjson_auth=fasjson_auth, backoff=backoff)
    return CachedDirectory(
        remote,
        make_cache(settings.cache.url),
        ttl=settings.cache.directory_ttl,
        distgit_url=settings.directory.distgit_url,
    )


async def invalidate_on_message(
    directory: Directory, topic: str, body: dict[str, Any], *, distgit_url: str | None = None
) -> DirectoryChange:
    """What a bus message changes in the directory, after forgetting the cached answers it
    makes wrong (if `directory` caches). The caller re-expands what it built from them."""
    if isinstance(directory, CachedDirectory):
        return await directory.invalidate_on_message(topic, body)
    return directory_change(topic, body, distgit_url=distgit_url)


async def invalidate_all(directory: Directory) -> None:
    """Forget every cached directory answer (if `directory` caches), after changes may have
    been announced unheard."""
    if isinstance(directory, CachedDirectory):
        await directory.invalidate_all()


async def close_directory(directory: Directory) -> None:
    close = getattr(directory, "aclose", None)
    if close is not None:
        await close()
