"""Text from elsewhere, made safe to print on a terminal.

A credential's claims, issuer and type come from whoever signed it, a verifier's name and
purpose from whoever asked: none of it may drive the terminal. Rich reads ``[link=...]`` and
``[bold]`` in strings as markup, and the terminal obeys ESC and C1 sequences (clear the
screen, a hidden hyperlink); a bidi override reorders what follows. :func:`plain` gives a
Rich ``Text``, which is never parsed as markup, with every such character written out as
``\\uXXXX`` (:mod:`service.core.display_text`), so a reader sees what was there.
"""

from __future__ import annotations

from rich.text import Text

from service.core.display_text import neutralise

__all__ = ["plain"]


def plain(value: object, style: str = "") -> Text:
    return Text(neutralise(str(value)), style=style)
