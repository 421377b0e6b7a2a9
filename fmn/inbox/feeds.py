"""A user's notifications as an Atom feed (RFC 4287): the inbox, or one rule's entries. Each
entry links to its event (else to the web app's inbox)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from fmn.inbox.store import InboxEntryPublic

ATOM = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
# What XML 1.0 cannot carry (the texts were cleaned already; this is the last lock).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def etag(kind: str, newest_id: int, total: int) -> str:
    """Changes when an entry comes or goes (prune), not with read state, which feeds omit."""
    digest = hashlib.sha256(f"{kind}/{newest_id}/{total}".encode()).hexdigest()[:20]
    return f'W/"{digest}"'


def render(
    *,
    feed_id: str,
    title: str,
    self_url: str,
    inbox_url: str,
    entries: Sequence[InboxEntryPublic],
    updated: dt.datetime,
) -> bytes:
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = _text(text)
        return element

    feed = ET.Element(f"{{{ATOM}}}feed")
    sub(feed, "id", feed_id)
    sub(feed, "title", title)
    sub(feed, "updated", _time(updated))
    sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    sub(feed, "link", rel="alternate", href=inbox_url, type="text/html")
    author = sub(feed, "author")
    sub(author, "name", "Fedora Notifications")
    sub(feed, "generator", "fmn")
    for entry in entries:
        item = sub(feed, "entry")
        sub(item, "id", f"{feed_id}:entry:{entry.id}")
        sub(item, "title", entry.subject, type="text")
        sub(item, "link", rel="alternate", href=entry.link or inbox_url)
        sub(item, "updated", _time(entry.created_at))
        sub(item, "published", _time(entry.message_time))
        sub(item, "content", entry.text, type="text")
        if entry.application:
            sub(item, "category", term=_text(entry.application))
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8")
