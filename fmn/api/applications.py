"""The applications whose messages fmn can read: `/applications`, and what an `applications`
tracking rule may name."""

from __future__ import annotations

import logging
import warnings
from functools import cache
from importlib.metadata import entry_points

from fmn.rules.schema import application_key

log = logging.getLogger(__name__)


@cache
def application_names() -> list[str]:
    """App names of the installed message schemas (`app_name`, else the entry point's first
    word), one per name ignoring case."""
    names: dict[str, str] = {}
    for ep in entry_points(group="fedora.messages"):
        name = ep.name.split(".", 1)[0]
        try:
            cls = ep.load()
            value = getattr(cls, "app_name", None)
            if not isinstance(value, str):
                with warnings.catch_warnings():  # deprecated schemas warn when instantiated
                    warnings.simplefilter("ignore")
                    value = cls(body={}).app_name
            if isinstance(value, str) and value:
                name = value
        except Exception:  # a schema that cannot say: keep the entry point's word
            log.debug("no app_name from %s", ep.name)
        names.setdefault(application_key(name), name)
    return sorted(names.values(), key=str.lower)


def unknown_applications(names: list[str]) -> list[int]:
    """The positions of the names that are no installed schema's application (ignoring case,
    as the `applications` filter compares)."""
    known = {application_key(name) for name in application_names()}
    return [i for i, name in enumerate(names) if application_key(name) not in known]
