"""The names the account system gives users and groups, checked before a name is looked up.

FASJSON serves FreeIPA's users and groups. FreeIPA accepts for both names of letters, digits,
`_`, `.` and `-` (and a trailing `$` for machine accounts); Noggin, which creates Fedora's
accounts, is stricter still (lower-case letters, digits and `-`). fmn takes FreeIPA's rule
without a leading `.` or `-` and without `$`: no account that can log in or own a package is
refused, and no name can be a path segment such as `..` or an option such as `-x`.
"""

from __future__ import annotations

import re

MAX_LENGTH = 255
PATTERN = rf"^[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{MAX_LENGTH - 1}}}$"
RULE = "letters, digits, '_', '.' and '-', not starting with '.' or '-'"
_NAME = re.compile(PATTERN)


def is_account_name(name: str) -> bool:
    """Whether `name` can be a username or group name of the account system."""
    return _NAME.fullmatch(name) is not None
