"""The one set of rules for text from a bus message (fmn.notify), which the consumer
applies when it writes a notification and each sender at the edge of its protocol's frame.
These need no service."""

from __future__ import annotations

import pytest

from fmn.notify import mail_html, matrix_html, multi_line, one_line, safe_url

# Right-to-left override, left-to-right embedding, pop, isolates, marks, Arabic letter mark.
BIDI = "\u202e\u202a\u202c\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def test_in_one_line_breaks_become_one_space_and_other_controls_vanish() -> None:
    # The consumer used to turn every control into a space, the senders to drop all but breaks.
    value = "start\r\nPRIVMSG #ops :pwned\u2028QUIT :bye\x00\x01ACTION x\x01\t\x02bold\x03\x85end"
    assert one_line(value) == "start PRIVMSG #ops :pwned QUIT :byeACTION x bold end"
    assert one_line("  a \x00 b\n\n\n c  ") == "a b c"


@pytest.mark.parametrize("bidi", list(BIDI))
def test_bidi_controls_never_reach_a_line_a_link_or_html(bidi: str) -> None:
    # The senders' rule used to keep them: a line could display as something else than it is.
    assert one_line(f"invoice{bidi}fdp.exe") == "invoicefdp.exe"
    assert safe_url(f"https://example.org/{bidi}x") is None
    assert bidi not in matrix_html(f"<b>a{bidi}b</b>")
    assert bidi not in mail_html(f"<p>a{bidi}b</p>")
    assert bidi not in multi_line(f"line{bidi}\nline", 100)


def test_multi_line_text_keeps_its_lines_and_tabs_only() -> None:
    # Unicode line and paragraph separators are line breaks (the senders used to drop them).
    assert multi_line("a\r\nb\rc\u2028d\u2029e\x0cf", 100) == "a\nb\nc\nd\ne\nf"
    assert multi_line("col\tcol\x1b[31m\x00", 100) == "col\tcol[31m"


def test_limits_cut_with_a_mark() -> None:
    assert one_line("word " * 100, 20) == "word word word word…"
    assert len(one_line("x" * 1000, 250)) == 250
    huge = "line\n" * 1_000_000
    cut = multi_line(huge, 1000)
    assert cut.startswith("line\nline\n") and cut.endswith("[… cut: the message is too long]")
    assert len(cut) < 1100


def test_only_plain_http_links_are_kept() -> None:
    assert safe_url("https://bodhi.fedoraproject.org/updates/1") is not None
    for bad in ("javascript:alert(1)", "https://x/\r\nBcc: a@b", "https://x/ y", "http://", ""):
        assert safe_url(bad) is None


def test_html_sanitizers_keep_what_the_client_renders() -> None:
    evil = '<b>ok</b><script>alert(1)</script><img src=x onerror="a()"><a href="javascript:x">j</a>'
    for markup in (matrix_html(evil), mail_html(evil)):
        assert "<b>ok</b>" in markup
        for bad in ("<script", "onerror", "javascript:"):
            assert bad not in markup
    assert "<img" not in matrix_html(evil)  # not in the subset Matrix clients render
