"""QR codes for credential offers, as PNG and SVG, drawn by ``segno`` (pure Python: no Pillow,
no native library on the server)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno

__all__ = ["QrImages", "render"]


@dataclass(frozen=True, slots=True)
class QrImages:
    png: bytes
    svg: str


def render(text: str, *, scale: int = 6) -> QrImages:
    """Both images of one QR code. Error correction M: a phone camera reads a code on a
    slightly smudged screen, and a by-reference offer stays small enough to scan quickly."""
    code = segno.make(text, error="m", micro=False)
    png, svg = io.BytesIO(), io.BytesIO()
    code.save(png, kind="png", scale=scale, border=4)
    code.save(svg, kind="svg", scale=scale, border=4, xmldecl=False)
    return QrImages(png=png.getvalue(), svg=svg.getvalue().decode("utf-8"))


def render_if_it_fits(text: str) -> QrImages | None:
    """The QR code, or None when ``text`` is beyond any QR code (a signed request passed by
    value carries a certificate chain: give it as a link, or pass it by reference)."""
    try:
        return render(text)
    except segno.DataOverflowError:
        return None
