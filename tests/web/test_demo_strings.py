"""The /demo page's files, read as files (no browser): complete in Arabic, French and English,
nothing inline for the Content-Security-Policy to block, and right-to-left for Arabic.

The browser tests (test_demo_page.py) see only the strings their flow happens to show; a key
missing from one language, or a placeholder lost in translation, would pass there and show
the English text, or a raw ``{codes}``, to the first tester who meets it.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from service.core.reasons import Reason
from service.errors import OAuthError, wire_errors


def emitted_codes() -> set[str]:
    """Every code an answer can carry (the README's code tables, which test_readme checks
    against these): problem and OAuth codes, their OAuth `error` values, verdict reasons."""
    codes = {cls.code for cls in wire_errors()} | {reason.value for reason in Reason}
    codes |= {cls.error for cls in wire_errors() if issubclass(cls, OAuthError) and cls.error}
    return codes


DEMO = Path(__file__).resolve().parents[2] / "service" / "web" / "demo"
JS = (DEMO / "demo.js").read_text(encoding="utf-8")
HTML = (DEMO / "index.html").read_text(encoding="utf-8")
LANGUAGES = ("ar", "fr", "en")
_STRING = r'"(?:[^"\\]|\\.)*"'


def strings() -> dict[str, dict[str, str]]:
    """``STRINGS`` of demo.js: language -> key -> text (concatenations joined)."""
    start = JS.index("const STRINGS = {")
    block = JS[start : JS.index("\n};\n", start)]
    found: dict[str, dict[str, str]] = {}
    for language in re.finditer(r"^  (\w+): \{\n(.*?)^  \},", block, re.S | re.M):
        entries: dict[str, str] = {}
        for entry in re.finditer(
            rf"^    (\w+): ((?:{_STRING}(?:\s*\+\s*)?)+),$", language.group(2), re.M
        ):
            assert entry.group(1) not in entries, f"{language.group(1)}.{entry.group(1)} twice"
            parts = re.findall(_STRING, entry.group(2))
            entries[entry.group(1)] = "".join(
                p[1:-1].replace('\\"', '"').replace("\\'", "'") for p in parts
            )
        # Every line of the block is an entry, so none is skipped by the pattern above.
        lines = re.findall(r"^    \w+:", language.group(2), re.M)
        assert len(lines) == len(entries), f"{language.group(1)}: an entry was not read"
        found[language.group(1)] = entries
    return found


def used_keys() -> set[str]:
    """Keys the page looks up: in the HTML (data-i18n, data-i18n-alt) and in the script."""
    keys = set(re.findall(r'data-i18n(?:-alt)?="(\w+)"', HTML))
    for pattern in (
        r'\bt\("(\w+)"',
        r'\bsay\([^,()]+,\s*"(\w+)"',
        r'UserError\("(\w+)"',
        r'notices\.add\("(\w+)"',
    ):
        keys |= set(re.findall(pattern, JS))
    # t(`status_${status}`): one key per status a credential can have.
    assert "t(`status_${verdict.credential_status}`)" in JS
    keys |= {f"status_{status}" for status in ("valid", "suspended", "revoked")}
    # t(`code_${code}`): one key per documented code (test_every_documented_code_...).
    assert "t(`code_${code}`)" in JS
    keys |= {f"code_{code}" for code in emitted_codes()}
    return keys


def test_every_language_has_every_key() -> None:
    table = strings()
    assert sorted(table) == sorted(LANGUAGES)
    for language in LANGUAGES:
        assert set(table[language]) == set(table["en"]), language
        assert all(text.strip() for text in table[language].values()), language


def test_every_key_the_page_uses_exists_and_none_is_unused() -> None:
    defined = set(strings()["en"])
    used = used_keys()
    assert sorted(used - defined) == [], "looked up but not translated"
    assert sorted(defined - used) == [], "translated but never shown"


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_translations_keep_their_placeholders(language: str) -> None:
    table = strings()
    for key, english in table["en"].items():
        placeholders = sorted(re.findall(r"\{(\w+)\}", english))
        assert sorted(re.findall(r"\{(\w+)\}", table[language][key])) == placeholders, key


def test_arabic_is_arabic_and_the_page_turns_right_to_left_for_it() -> None:
    arabic = strings()["ar"]
    # Technical words (scope names, WebCrypto, a file name) stay Latin; the rest is Arabic.
    assert all(re.search(r"[\u0600-\u06ff]", text) for text in arabic.values())
    assert 'root.dir = lang === "ar" ? "rtl" : "ltr";' in JS
    assert "root.lang = lang;" in JS
    assert re.search(r'<html lang="en" dir="ltr">', HTML)
    # What must read left to right whatever the page's direction is marked so.
    for element in (
        "offer-uri",
        "wallet-offer",
        "wallet-request",
        "request-uri",
        "credential-id",
        "offer-pin",
        "wallet-pin",
    ):
        assert re.search(rf'id="{element}"[^>]*dir="ltr"', HTML, re.S), element


def test_the_html_text_is_the_english_text() -> None:
    """Before the script runs (or without it) the page shows its HTML text: the same words."""
    english = strings()["en"]
    for match in re.finditer(r'<(\w+)[^>]*\bdata-i18n="(\w+)"[^>]*>(.*?)</\1>', HTML, re.S):
        shown = " ".join(match.group(3).replace("&amp;", "&").split())
        assert shown == english[match.group(2)], match.group(2)


class _Inline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "style":
            self.found.append("<style>")
        if tag == "script":
            self._in_script = True
            if "src" not in names:
                self.found.append("<script> without src")
        self.found += [
            f"{tag} {name}=" for name in names if name == "style" or name.startswith("on")
        ]
        for name, value in attrs:
            if name in ("href", "src", "action") and value and value.startswith("javascript:"):
                self.found.append(f"{tag} {name}=javascript:")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append("script text")


def test_the_page_has_no_inline_script_or_style() -> None:
    """The demo's CSP allows scripts and styles from files of its own origin only: anything
    inline would be blocked in the browser (and would be an injection path if it were not)."""
    parser = _Inline()
    parser.feed(HTML)
    assert parser.found == []
    # The script adds no inline style or markup either: text goes in as text.
    for construct in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        'setAttribute("style"',
        "eval(",
        "new Function",
    ):
        assert construct not in JS, construct


def test_the_inline_check_can_fail() -> None:
    for bad in (
        "<script>alert(1)</script>",
        '<p style="color: red">x</p>',
        '<button onclick="go()">x</button>',
        "<style>p {}</style>",
        '<a href="javascript:go()">x</a>',
    ):
        parser = _Inline()
        parser.feed(bad)
        assert parser.found, bad


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_documented_code_is_translated(language: str) -> None:
    """A server message shown on the Arabic or French page is in that language: every code
    the API can answer (the README's tables, checked against the code by test_readme)."""
    table = strings()[language]
    missing = sorted(code for code in emitted_codes() if f"code_{code}" not in table)
    assert missing == []
    if language == "ar":
        arabic = re.compile(r"[\u0600-\u06FF]")
        assert all(arabic.search(table[f"code_{code}"]) for code in emitted_codes())


def test_arabic_says_offer_and_presentation_differently() -> None:
    """عرض is the credential offer; a presentation is تقديم, never عرض (nor is the demo)."""
    arabic = strings()["ar"]
    for key in ("createOffer", "offerHeading", "offerUri", "accept", "walletOffer"):
        assert "عرض" in arabic[key], key
    for key in (
        "walletRequest",
        "badRequest",
        "presented",
        "presentedRefused",
        "requestHeading",
        "requestQrAlt",
    ):
        assert "عرض" not in arabic[key], key
        assert "تقديم" in arabic[key] or "قُدِّم" in arabic[key], key
    for key in ("pageTitle", "pageHeading", "skip", "footer"):
        assert "عرض" not in arabic[key], key


def test_the_page_shows_the_command_that_makes_an_api_key() -> None:
    assert (
        '<code id="api-key-command" dir="ltr">thiqa clients add demo --scopes '
        "issue,revoke,verify</code>"
    ) in HTML
    assert (
        '<code id="api-key-command-checkout" dir="ltr">python3 run.py thiqa clients add demo '
        "--scopes issue,revoke,verify</code>"
    ) in HTML
