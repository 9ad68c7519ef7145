"""Records as blocks of text that fit the terminal: a title line, then one ``name  value``
line per field, each line folded at the terminal's width.

A table with many columns is unreadable at 80 columns (each cell cut to a few letters); a
block per record keeps every value whole, ids too, which are copied into the next command.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.cells import cell_len, chop_cells
from rich.console import Console

__all__ = ["block", "print_lines"]

INDENT = "  "
#: Narrower terminals are treated as this wide: every name and some of its value still fit
#: on one line (the longest name is under 12 cells).
_MIN_WIDTH = 24


def _cut(text: str, width: int, *, hard: bool) -> tuple[str, str]:
    """The longest head of ``text`` within ``width`` cells, at a space if there is one
    (the space dropped), else exactly at the width (``hard``) or at the first space after
    it; and the rest."""
    head = chop_cells(text, width)[0]
    if head == text:
        return text, ""
    space = head.rfind(" ")
    if space > 0:
        return head[:space].rstrip(), text[space + 1 :].lstrip()
    if not hard:
        word, _, rest = text.partition(" ")
        return word, rest.lstrip()
    return head, text[len(head) :]


def _fold(head: str, text: str, width: int, hanging: str, *, hard: bool = True) -> list[str]:
    """``head`` + ``text`` in lines of at most ``width`` cells, ``text`` cut at spaces where
    it can be; lines after the first start with ``hanging`` instead of ``head``."""
    lines = []
    rest, prefix = text, head
    while True:
        piece, rest = _cut(rest, width - cell_len(prefix), hard=hard)
        lines.append(prefix + piece)
        if not rest:
            return lines
        prefix = hanging


def block(title: str, fields: Sequence[tuple[str, str]], width: int) -> list[str]:
    """``title``, then each (name, value) with a value, names aligned, all within ``width``
    cells. A value too long for its line continues under itself. The title is cut only at
    spaces: it is what identifies the record (a kid, typed into the next command), so a word
    longer than the terminal is left whole for the terminal to wrap."""
    width = max(width, _MIN_WIDTH)
    lines = _fold("", title, width, INDENT, hard=False)
    shown = [(name, value) for name, value in fields if value]
    label = max((cell_len(name) for name, _ in shown), default=0)
    for name, value in shown:
        head = f"{INDENT}{name.ljust(label)}  "
        # Continuations under the value; on a terminal too narrow for that, under the name.
        hanging = " " * cell_len(head) if cell_len(head) <= width // 2 else INDENT * 2
        lines += _fold(head, value, width, hanging)
    return lines


def print_lines(console: Console, lines: Iterable[str]) -> None:
    """Print lines exactly as folded: no markup, no highlighting, no second wrapping."""
    for line in lines:
        console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
