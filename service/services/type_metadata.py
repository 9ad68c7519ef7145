"""The national ID's SD-JWT VC Type Metadata (draft-ietf-oauth-sd-jwt-vc §6): one document,
``service/metadata/national-id.json``, read once.

It is what the type says about itself: its names and each claim's labels in Arabic, French and
English (served at the type's ``vct``, shown by wallets), and which claims exist at all, so
issuing refuses a claim the type does not define (``email``, a typo such as ``nationalty``)
instead of signing it into a citizen's credential.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["national_id_claim_paths", "national_id_metadata"]


@cache
def _document() -> dict[str, Any]:
    text = resources.files("service").joinpath("metadata/national-id.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def national_id_metadata(vct: str) -> dict[str, Any]:
    """The Type Metadata document of the national ID whose ``vct`` is ``vct``."""
    return {"vct": vct, **_document()}


@cache
def national_id_claim_paths() -> frozenset[tuple[str, ...]]:
    """Every claim path the type defines, as tuples of member names: ``("place_of_birth",)``
    and ``("place_of_birth", "locality")``."""
    return frozenset(tuple(claim["path"]) for claim in _document()["claims"])
