"""Form bodies (``application/x-www-form-urlencoded``) of the wallet-facing endpoints.

OAuth's token endpoint and OpenID4VP's ``direct_post`` response endpoint take forms, and their
errors are the protocol's, not problem details; so the body is read here by hand, the same way
for both: no ``python-multipart``, UTF-8 only (a percent-escape that is not UTF-8 is refused,
not replaced: OpenID4VP 1.0 ``direct_post``), at most a few fields, and a repeated parameter
refused (RFC 6749 §3.2).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request

__all__ = ["FORM", "NO_STORE", "media_type", "read_form"]

FORM = "application/x-www-form-urlencoded"
#: Answers carrying codes, tokens or verdicts are never cached (RFC 6749 §5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_FIELDS = 16


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_form(request: Request) -> dict[str, str] | None:
    """The form's parameters; None when the body is not such a form, is not UTF-8, has too
    many fields or repeats a parameter."""
    if media_type(request) != FORM:
        return None
    try:
        pairs = parse_qsl(
            (await request.body()).decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=_MAX_FIELDS,
            encoding="utf-8",
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        return None
    form = dict(pairs)
    return form if len(form) == len(pairs) else None
