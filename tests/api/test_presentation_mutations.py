"""Random mutations of a valid presentation, sent to the live API, are never valid.

One genuine presentation (issuer JWT, disclosures, KB-JWT over the verifier's nonce and
audience) verifies; Hypothesis then changes it, character by character or component by
component, and posts each variant to ``POST /v1/verify`` over real HTTP. Everything in a
presentation is covered by a signature or a digest (the issuer's signature, the disclosure
digests it signs, the KB-JWT's signature and its ``sd_hash`` over everything before it), so
no change may leave it valid. Every answer must be a 200 verdict (never a 5xx, never a
refusal of the request itself), not valid, with no claims and only documented codes.

Derandomized and bounded, so the run is the same every time and takes a few seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from service.core.reasons import Reason

from .conftest import AUDIENCE, NONCE

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: Characters a mutation may write: base64url (so most variants still parse and go deep),
#: the separators, padding, the standard alphabet, and a few that are not ASCII at all.
CHARACTERS = st.sampled_from([*ALPHABET, "~", ".", "=", "+", "/", " ", "\x00", "é", "\u200b"])
CODES = frozenset(reason.value for reason in Reason)


def _edit(text: str, data: st.DataObject) -> str:
    """One character-level edit: replace, insert or delete a character, or cut the end.

    The place is drawn in two steps, a segment (between ``~`` and ``.``) and then a place in
    it, so that short segments (signatures, disclosures, the KB-JWT) are hit as often as the
    long issuer payload, where almost any change only breaks the JSON.
    """
    kind = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
    segments = [m.span() for m in re.finditer(r"[^~.]+", text)] or [(0, len(text))]
    start, end = data.draw(st.sampled_from(segments))
    at = data.draw(st.integers(start, max(start, end - 1)))
    at = min(at, len(text) - 1)
    if kind == "replace":
        return text[:at] + data.draw(CHARACTERS.filter(lambda c: c != text[at])) + text[at + 1 :]
    if kind == "insert":
        return text[:at] + data.draw(CHARACTERS) + text[at:]
    if kind == "delete":
        return text[:at] + text[at + 1 :]
    return text[:at]


def _restructure(text: str, data: st.DataObject) -> str:
    """One component-level edit: drop, repeat or swap the ``~``-separated parts."""
    parts = text.split("~")
    kind = data.draw(st.sampled_from(["drop", "repeat", "swap", "move"]))
    i = data.draw(st.integers(0, len(parts) - 1))
    j = data.draw(st.integers(0, len(parts) - 1))
    if kind == "drop":
        del parts[i]
    elif kind == "repeat":
        parts.insert(j, parts[i])
    elif kind == "swap":
        parts[i], parts[j] = parts[j], parts[i]
    else:
        parts.insert(j, parts.pop(i))
    return "~".join(parts)


@pytest.fixture
def genuine(http: httpx.Client, present: Callable[..., str]) -> str:
    presentation = present(("given_name", "family_name#ar", "birthdate"))
    body = _verify(http, presentation)
    assert body["valid"] is True, body
    return presentation


def _verify(http: httpx.Client, presentation: str) -> dict[str, Any]:
    response = http.post(
        "/v1/verify", json={"credential": presentation, "nonce": NONCE, "audience": AUDIENCE}
    )
    assert response.status_code == 200, response.text
    return response.json()


# The fixtures (one live server, one genuine presentation) are only read by the examples,
# so sharing them across examples is what is wanted here.
@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_mutated_presentation_is_never_valid(
    http: httpx.Client, genuine: str, data: st.DataObject
) -> None:
    mutated = genuine
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        edit = data.draw(st.sampled_from([_edit, _edit, _edit, _restructure]))
        mutated = edit(mutated, data) or "~"
    if mutated == genuine:  # two edits that undo each other: nothing to test
        return
    body = _verify(http, mutated)
    assert body["valid"] is False, mutated
    assert body["claims"] is None
    codes = [error["code"] for error in body["errors"]]
    assert codes, body
    assert set(codes) <= CODES
    event(codes[0])  # --hypothesis-show-statistics: how deep the variants got
