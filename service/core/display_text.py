"""Characters that make text display as something it is not.

A claim value is shown to people: on a terminal by ``thiqa wallet``, in a browser by the
demo, by any wallet or verifier downstream. Some characters do not show as themselves:

- C0 and C1 controls (``Cc``): ESC and CSI start terminal sequences (clear the screen, a
  hidden hyperlink), a line break forges a new line of output;
- format characters (``Cf``): bidirectional embeddings, overrides and isolates (U+202A-202E,
  U+2066-2069) make text read backwards, zero-width and tag characters hide letters;
- line and paragraph separators (``Zl``, ``Zp``) and lone surrogates (``Cs``).

They are refused in claims at issuance and neutralised when anything is printed. The marks
Arabic and Persian writing needs stay: zero-width (non-)joiner and the left-to-right,
right-to-left and Arabic letter marks, which change no character's meaning or order.
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["SCRIPT_MARKS", "is_spoofing", "neutralise", "spoofs"]

#: ZWNJ, ZWJ, LRM, RLM, ALM.
SCRIPT_MARKS: Final = frozenset("\u200c\u200d\u200e\u200f\u061c")
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cs", "Zl", "Zp"})


def is_spoofing(char: str) -> bool:
    category = unicodedata.category(char)
    if category == "Cf":
        return char not in SCRIPT_MARKS
    return category in _REFUSED_CATEGORIES


def spoofs(text: str) -> bool:
    """True if ``text`` holds any character that does not display as itself."""
    return any(is_spoofing(char) for char in text)


def neutralise(text: str) -> str:
    """``text`` with each such character written out as ``\\uXXXX``: visible, inert."""
    if not spoofs(text):
        return text
    return "".join(_written_out(char) if is_spoofing(char) else char for char in text)


def _written_out(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
