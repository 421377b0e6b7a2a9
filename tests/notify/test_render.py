"""Work items for matched messages: content as FMN 3 had it, and nothing a message says can
inject HTML, an email header or an IRC command."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from fedora_messaging import message as fm

from fmn.notify import EMAIL_TEXT_LIMIT, IRC_LINE_BYTES, build_work_items, line, line_html
from fmn.rules import incoming as message_module
from fmn.rules.incoming import parse_message
from fmn.sendqueue.workitem import WorkItem
from tests.rules.conftest import BODHI, make_rule

PUBLIC_URL = "https://notifications.example.org/"
EVIL = "Hi\r\nBcc: victim@example.org\r\n\r\n<script>alert(1)</script>\x03\x02\x00 PRIVMSG #x :y"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.hrefs: list[str] = []
        self.attributes: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        self.hrefs.extend(value for name, value in attrs if name == "href")


def tags_of(markup: str) -> _Tags:
    parser = _Tags()
    parser.feed(markup)
    return parser


async def render(build_index, raw, *rules):
    index = await build_index(*rules)
    parsed = parse_message(raw)
    return build_work_items(parsed, index.match(parsed))


def everywhere():
    """alice's addresses, one per protocol."""
    return [
        ("email", "alice@example.org"),
        ("irc", "alice"),
        ("matrix", "@alice:fedora.im"),
    ]


async def test_a_real_message_renders_like_fmn3(build_index, corpus_message):
    raw = corpus_message(BODHI, "bodhi.update.edit")
    parsed = parse_message(raw)
    items = await render(
        build_index,
        raw,
        make_rule(
            "alice",
            "artifacts-owned",
            ["alice"],
            rule_id=12,
            name="My packages",
            destinations=everywhere(),
        ),
    )
    email, irc, matrix = sorted(items, key=lambda item: item.protocol)

    assert email.key == f"{raw['id']}/email/alice@example.org"
    assert email.user == "alice" and [r.name for r in email.rules] == ["My packages"]
    assert email.email.subject == f"[bodhi] {parsed.summary}"
    assert email.email.text.startswith(str(fm.load_message(raw)))
    assert f"\n{parsed.url}\n" in email.email.text
    assert "Sent by" not in email.email.text  # the footer is the email sender's
    assert email.email.metadata == {
        "Topic": "bodhi.update.edit",
        "Application": "bodhi",
        "Severity": "info",
        "Packages": "tzdata",
        "Users": "ralph",
        "Rules": '"My packages"',
    }
    links = tags_of(email.email.html).hrefs
    assert links == [parsed.url]
    assert irc.chat.text == f"[bodhi] {parsed.summary} {parsed.url}"
    assert matrix.chat.text == irc.chat.text
    assert tags_of(matrix.chat.html).hrefs == [parsed.url]
    assert WorkItem.from_bytes(email.to_bytes()) == email


async def test_the_email_names_every_rule_that_asked(build_index, corpus_message):
    items = await render(
        build_index,
        corpus_message(BODHI, "bodhi.update.edit"),
        make_rule("alice", "artifacts-owned", ["alice"], rule_id=1, name="Mine"),
        make_rule("alice", "users-followed", ["ralph"], rule_id=2),
    )

    (item,) = items
    assert [r.id for r in item.rules] == [1, 2]
    assert [(r.id, r.name) for r in item.rules] == [(1, "Mine"), (2, None)]
    assert item.email.metadata["Rules"] == '"Mine", #2'


@pytest.fixture
def evil_schema(monkeypatch):
    class Evil(fm.Message):
        @property
        def summary(self):
            return EVIL

        @property
        def app_name(self):
            return "<b>app</b>\r\nX-Injected: 1"

        @property
        def url(self):
            return self.body["url"]

        @property
        def packages(self):
            return ["tzdata"]

        @property
        def usernames(self):
            return ["ralph\r\nBcc: victim@example.org"]

        def __str__(self):
            return "</pre><script>alert(1)</script><a href='javascript:alert(2)'>x</a>\x1b[31m"

    monkeypatch.setitem(message_module._classes, "test.evil.v1", Evil)


def evil_message(url: str) -> dict:
    return {
        "id": "evil-1",
        "topic": "evil.topic\r\nBcc: victim@example.org",
        "headers": {"fedora_messaging_schema": "test.evil.v1"},
        "body": {"url": url},
    }


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        'https://ok.example/"><img src=x onerror=alert(1)>',
        "https://ok.example/\r\nBcc: victim@example.org",
    ],
)
async def test_nothing_from_a_message_injects_html_headers_or_irc_commands(
    build_index, evil_schema, url
):
    items = await render(
        build_index,
        evil_message(url),
        make_rule(
            "alice",
            "artifacts-owned",
            ["alice"],
            name="<i>rule</i>",
            destinations=everywhere(),
        ),
    )
    email, irc, matrix = sorted(items, key=lambda item: item.protocol)

    one_liners = [email.email.subject, *email.email.metadata.values(), irc.chat.text]
    one_liners += [matrix.chat.text, email.message.summary, email.message.topic]
    one_liners += [email.message.app_name, *email.message.usernames]
    for value in one_liners:
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value), value

    mail = tags_of(email.email.html)
    assert mail.tags <= {"html", "head", "meta", "body", "pre", "p", "a", "hr", "div"}
    assert mail.attributes <= {"charset", "style", "href"}
    assert all(href.startswith("https://") for href in mail.hrefs)
    assert "\x1b" not in email.email.text
    chat = tags_of(matrix.chat.html)
    assert chat.tags <= {"a"}
    assert all(href.startswith("https://") for href in chat.hrefs)
    if url.startswith("javascript:"):
        assert "javascript" not in irc.chat.text and email.message.url is None


async def test_a_huge_message_makes_a_bounded_notification(build_index):
    raw = {
        "id": "big-1",
        "topic": "newapp.big",
        "headers": {"fedora_messaging_rpm_tzdata": True},
        "body": {"log": "line\n" * 1_000_000},
    }
    (email, irc) = await render(
        build_index,
        raw,
        make_rule("alice", "artifacts-owned", ["alice"], destinations=everywhere()[:2]),
    )
    assert len(email.email.text) < EMAIL_TEXT_LIMIT + 1000
    assert len(email.email.html) < 2 * EMAIL_TEXT_LIMIT
    assert len(irc.chat.text.encode()) <= IRC_LINE_BYTES


async def test_only_matched_messages_are_rendered(build_index, corpus_message, monkeypatch):
    rendered = []

    class Counting(fm.Message):
        @property
        def summary(self):
            rendered.append("summary")
            return "s"

        def __str__(self):
            rendered.append("str")
            return "s"

    monkeypatch.setitem(message_module._classes, "test.counting.v1", Counting)
    index = await build_index(make_rule("alice", "artifacts-owned", ["alice"]))
    parsed = parse_message(
        {
            "id": "c1",
            "topic": "t",
            "headers": {"fedora_messaging_schema": "test.counting.v1"},
            "body": {},
        }
    )

    assert build_work_items(parsed, index.match(parsed)) == []
    assert rendered == []


@pytest.fixture
def bidi_schema(monkeypatch):
    class Bidi(fm.Message):
        @property
        def summary(self):
            return "update\u202e\u2066 of tzdata\x03 pushed\u2028by ralph"

        @property
        def app_name(self):
            return "bod\u202ehi"

        @property
        def url(self):
            return "https://bodhi.example/\u202eupdates"

        @property
        def packages(self):
            return ["tzdata"]

        @property
        def usernames(self):
            return ["ral\u200fph"]

        def __str__(self):
            return "a body\u202e with\u2029two lines"

    monkeypatch.setitem(message_module._classes, "test.bidi.v1", Bidi)


async def test_bidi_controls_from_a_message_reach_no_line_header_or_html(build_index, bidi_schema):
    raw = {
        "id": "bidi-1",
        "topic": "bidi\u2067.topic",
        "headers": {"fedora_messaging_schema": "test.bidi.v1"},
        "body": {},
    }
    items = await render(
        build_index,
        raw,
        make_rule("alice", "artifacts-owned", ["alice"], destinations=everywhere()),
    )
    email, irc, matrix = sorted(items, key=lambda item: item.protocol)

    # Line breaks became a space and every other control vanished, in every protocol alike.
    assert email.email.subject == "[bodhi] update of tzdata pushed by ralph"
    assert irc.chat.text == matrix.chat.text == "[bodhi] update of tzdata pushed by ralph"
    assert email.email.metadata["Topic"] == "bidi.topic"
    assert email.message.usernames == ["ralph"] and email.message.url is None
    assert email.email.text == "a body with\ntwo lines\n"
    written = [email.email.html, matrix.chat.html, email.email.text, *email.email.metadata.values()]
    for value in written:
        assert not any(c in value for c in "\u202e\u2066\u2067\u200f"), value


async def test_a_digest_lists_a_notification_by_its_chat_line(build_index, corpus_message):
    raw = corpus_message(BODHI, "bodhi.update.edit")
    parsed = parse_message(raw)
    email, irc = await render(
        build_index,
        raw,
        make_rule("alice", "artifacts-owned", ["alice"], destinations=everywhere()[:2]),
    )
    # Digests (of email items too) list the line the chat protocols send, written by one function.
    assert line(email.message) == irc.chat.text == f"[bodhi] {parsed.summary} {parsed.url}"
    entry = tags_of(line_html(email.message))
    assert entry.tags == {"a"} and entry.hrefs == [parsed.url]
