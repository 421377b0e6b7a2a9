"""Users, groups and project ownership: FASJSON and dist-git clients, their cache and its
invalidation, and a local directory read from a file into memory."""

from fmn.directory.base import Directory, DirectoryUnavailable
from fmn.directory.cache import CachedDirectory
from fmn.directory.changes import DirectoryChange, directory_change
from fmn.directory.factory import (
    close_directory,
    invalidate_all,
    invalidate_on_message,
    make_directory,
)

__all__ = [
    "CachedDirectory",
    "Directory",
    "DirectoryChange",
    "DirectoryUnavailable",
    "close_directory",
    "directory_change",
    "invalidate_all",
    "invalidate_on_message",
    "make_directory",
]
