"""Selective Disclosure for JWTs (RFC 9901): disclosures, digests, issuance and processing.

Written here rather than taken from the reference library (PyPI ``sd-jwt``) because that
library accepts several malformed presentations the RFC says to reject, and a verifier must be
the strictest party in the exchange. The reference library is used in the tests as a peer.

Issuance marks what may be disclosed with :class:`SD` and :func:`encode` turns the marked
claims into digests and disclosures. Verification is :func:`split` then :func:`disclose`, which
enforces RFC 9901 §7.1: every disclosure referenced exactly once, every digest seen once, no
disclosure named ``_sd`` or ``...``, no name that already exists, the right shape per context.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from service.core.encoding import (
    EncodingError,
    b64url_decode,
    b64url_encode,
    json_dumps,
    json_loads,
)
from service.core.memo import Memo
from service.core.reasons import Reason, VerificationFailure

__all__ = [
    "DEFAULT_HASH",
    "HASH_ALGORITHMS",
    "SD",
    "Disclosure",
    "Presentation",
    "Resolved",
    "digest",
    "disclose",
    "encode",
    "from_json_serialization",
    "make_disclosure",
    "mark_all",
    "split",
]

DEFAULT_HASH: Final = "sha-256"
HASH_ALGORITHMS: Final[Mapping[str, Callable[[bytes], Any]]] = {
    "sha-256": hashlib.sha256,
    "sha-384": hashlib.sha384,
    "sha-512": hashlib.sha512,
}
_SD: Final = "_sd"
_ELLIPSIS: Final = "..."
_SD_ALG: Final = "_sd_alg"
SALT_BYTES: Final = 16  # 128 bits, RFC 9901 §9.3
#: How deep a disclosed claim may sit. Each disclosure's own JSON is depth-limited, but a chain
#: of disclosures nests one inside the next without end; the walk is recursive, and a few
#: hundred levels (a 60 KiB credential) would reach Python's recursion limit. Credentials
#: nest a handful of levels; this is far above that and far below the limit.
MAX_DISCLOSURE_DEPTH: Final = 32


@dataclass(frozen=True, slots=True)
class SD:
    """Marks a claim value (or array element) as selectively disclosable at issuance."""

    value: Any


@dataclass(frozen=True, slots=True)
class Disclosure:
    encoded: str
    salt: str
    name: str | None  # None for an array element
    value: Any


def digest(encoded: str, hash_alg: str = DEFAULT_HASH) -> str:
    """Digest over the ASCII of the disclosure exactly as sent (RFC 9901 §4.2.3)."""
    return b64url_encode(HASH_ALGORITHMS[hash_alg](encoded.encode("ascii")).digest())


def make_disclosure(value: Any, *, name: str | None = None, salt: str | None = None) -> Disclosure:
    salt = salt if salt is not None else b64url_encode(secrets.token_bytes(SALT_BYTES))
    array = [salt, value] if name is None else [salt, name, value]
    encoded = b64url_encode(json_dumps(array).encode("utf-8"))
    return Disclosure(encoded=encoded, salt=salt, name=name, value=value)


def mark_all(claims: Mapping[str, Any]) -> dict[str, Any]:
    """Make every property and every array element disclosable, recursively.

    Recursive disclosure lets a holder show ``place_of_birth.locality`` without the country,
    at the price of one more disclosure per nested object.
    """

    def mark(value: Any) -> Any:
        if isinstance(value, dict):
            return {name: SD(mark(item)) for name, item in value.items()}
        if isinstance(value, list):
            return [SD(mark(item)) for item in value]
        return value

    return {name: SD(mark(value)) for name, value in claims.items()}


def encode(
    claims: Mapping[str, Any],
    *,
    hash_alg: str = DEFAULT_HASH,
    decoys: Callable[[], int] | None = None,
) -> tuple[dict[str, Any], list[Disclosure]]:
    """Turn claims marked with :class:`SD` into a payload fragment and its disclosures.

    ``decoys`` says how many decoy digests to add to each ``_sd`` array (default: 1 to 3 at
    random), so a verifier cannot count the claims a holder kept back. Digests are sorted, so
    their order says nothing about the order of the claims.
    """
    count_decoys = decoys if decoys is not None else (lambda: 1 + secrets.randbelow(3))
    disclosures: list[Disclosure] = []

    def encode_value(value: Any) -> Any:
        if isinstance(value, SD):
            raise TypeError("SD marks a property or an array element, not a bare value")
        if isinstance(value, Mapping):
            return encode_object(value)
        if isinstance(value, list | tuple):
            return [encode_element(item) for item in value]
        return value

    def encode_element(item: Any) -> Any:
        if isinstance(item, SD):
            disclosure = make_disclosure(encode_value(item.value))
            disclosures.append(disclosure)
            return {_ELLIPSIS: digest(disclosure.encoded, hash_alg)}
        return encode_value(item)

    def encode_object(obj: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        digests: list[str] = []
        for name, item in obj.items():
            if name in (_SD, _ELLIPSIS, _SD_ALG):
                raise ValueError(f"claim name {name!r} is reserved by SD-JWT")
            if isinstance(item, SD):
                disclosure = make_disclosure(encode_value(item.value), name=name)
                disclosures.append(disclosure)
                digests.append(digest(disclosure.encoded, hash_alg))
            else:
                out[name] = encode_value(item)
        if digests:
            digests.extend(
                b64url_encode(HASH_ALGORITHMS[hash_alg](secrets.token_bytes(32)).digest())
                for _ in range(count_decoys())
            )
            out[_SD] = sorted(digests)
        return out

    return encode_object(claims), disclosures


@dataclass(frozen=True, slots=True)
class Presentation:
    """An SD-JWT split at its tildes (RFC 9901 §4)."""

    issuer_jwt: str
    disclosures: tuple[str, ...]
    kb_jwt: str | None
    #: What the KB-JWT's ``sd_hash`` covers: everything up to and including the last ``~``.
    hashed_part: str


def split(text: str) -> Presentation:
    if "~" not in text:
        raise VerificationFailure(Reason.MALFORMED, "not an SD-JWT")
    head, _, kb = text.rpartition("~")
    parts = head.split("~")
    issuer_jwt, disclosures = parts[0], parts[1:]
    if not issuer_jwt or any(not item for item in disclosures):
        raise VerificationFailure(Reason.MALFORMED, "empty SD-JWT component")
    return Presentation(
        issuer_jwt=issuer_jwt,
        disclosures=tuple(disclosures),
        kb_jwt=kb or None,
        hashed_part=head + "~",
    )


def _decode_disclosure(encoded: str) -> Disclosure:
    try:
        array = json_loads(b64url_decode(encoded))
    except EncodingError as exc:
        raise VerificationFailure(Reason.INVALID_DISCLOSURE, str(exc)) from exc
    if not isinstance(array, list) or len(array) not in (2, 3):
        raise VerificationFailure(Reason.INVALID_DISCLOSURE, "not a 2- or 3-element array")
    salt = array[0]
    if not isinstance(salt, str):
        raise VerificationFailure(Reason.INVALID_DISCLOSURE, "salt is not a string")
    if len(array) == 2:
        return Disclosure(encoded=encoded, salt=salt, name=None, value=array[1])
    name = array[1]
    if not isinstance(name, str):
        raise VerificationFailure(Reason.INVALID_DISCLOSURE, "claim name is not a string")
    if name in (_SD, _ELLIPSIS):
        raise VerificationFailure(Reason.INVALID_DISCLOSURE, "reserved claim name")
    return Disclosure(encoded=encoded, salt=salt, name=name, value=array[2])


def _decoded(encoded: str, hash_alg: str, memo: Memo | None) -> tuple[Disclosure, str]:
    """A disclosure and its digest; remembered by its exact text (the walk below never
    changes a disclosed value, it builds new objects and arrays)."""
    if memo is None:
        return _decode_disclosure(encoded), digest(encoded, hash_alg)
    known = memo.disclosures.get(encoded)
    if isinstance(known, tuple) and known[0] == hash_alg:
        return known[1], known[2]
    item, key = _decode_disclosure(encoded), digest(encoded, hash_alg)
    memo.disclosures.put(encoded, (hash_alg, item, key))
    return item, key


@dataclass(frozen=True, slots=True)
class Resolved:
    """The payload with disclosures applied, and where each disclosure landed."""

    claims: dict[str, Any]
    #: digest -> path of the claim or array element it disclosed.
    paths: dict[str, tuple[str | int, ...]] = field(default_factory=dict)


def disclose(
    payload: Mapping[str, Any],
    disclosures: Sequence[str],
    *,
    never_disclosable: Iterable[str] = (),
    memo: Memo | None = None,
) -> Resolved:
    """Apply ``disclosures`` to an issuer-signed ``payload`` (RFC 9901 §7.1 steps 3-5).

    ``never_disclosable`` names top-level claims that must not arrive through a disclosure
    (SD-JWT VC: ``iss``, ``exp``, ``cnf``, ``status``...).
    """
    hash_alg = payload.get(_SD_ALG, DEFAULT_HASH)
    if not isinstance(hash_alg, str) or hash_alg not in HASH_ALGORITHMS:
        raise VerificationFailure(Reason.INVALID_DISCLOSURE, "unsupported _sd_alg")
    by_digest: dict[str, Disclosure] = {}
    for encoded in disclosures:
        item, key = _decoded(encoded, hash_alg, memo)
        if key in by_digest:
            raise VerificationFailure(Reason.INVALID_DISCLOSURE, "disclosure sent twice")
        by_digest[key] = item
    seen: set[str] = set()
    paths: dict[str, tuple[str | int, ...]] = {}
    forbidden = frozenset(never_disclosable)

    def take(key: Any) -> Disclosure | None:
        if not isinstance(key, str):
            raise VerificationFailure(Reason.INVALID_DISCLOSURE, "digest is not a string")
        if key in seen:
            raise VerificationFailure(Reason.INVALID_DISCLOSURE, "digest appears twice")
        seen.add(key)
        return by_digest.get(key)

    def walk(value: Any, path: tuple[str | int, ...]) -> Any:
        if len(path) > MAX_DISCLOSURE_DEPTH:
            raise VerificationFailure(Reason.INVALID_DISCLOSURE, "claims nested too deeply")
        if isinstance(value, dict):
            return walk_object(value, path)
        if isinstance(value, list):
            return walk_array(value, path)
        return value

    def walk_object(obj: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
        if _ELLIPSIS in obj:
            raise VerificationFailure(Reason.INVALID_DISCLOSURE, "'...' outside an array")
        out = {
            name: walk(value, (*path, name))
            for name, value in obj.items()
            if name != _SD and not (name == _SD_ALG and not path)
        }
        if _SD_ALG in obj and path:
            raise VerificationFailure(Reason.INVALID_DISCLOSURE, "_sd_alg below the top level")
        digests = obj.get(_SD, [])
        if not isinstance(digests, list):
            raise VerificationFailure(Reason.INVALID_DISCLOSURE, "_sd is not an array")
        for key in digests:
            found = take(key)
            if found is None:
                continue  # undisclosed claim or decoy
            if found.name is None:
                raise VerificationFailure(Reason.INVALID_DISCLOSURE, "array disclosure in _sd")
            if found.name in out or found.name == _SD_ALG:
                raise VerificationFailure(Reason.INVALID_DISCLOSURE, "claim disclosed twice")
            if not path and found.name in forbidden:
                raise VerificationFailure(Reason.INVALID_DISCLOSURE, "claim may not be disclosed")
            paths[key] = (*path, found.name)
            out[found.name] = walk(found.value, (*path, found.name))
        return out

    def walk_array(items: list[Any], path: tuple[str | int, ...]) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if isinstance(item, dict) and _ELLIPSIS in item:
                if len(item) != 1:
                    raise VerificationFailure(Reason.INVALID_DISCLOSURE, "'...' with siblings")
                found = take(item[_ELLIPSIS])
                if found is None:
                    continue  # element not disclosed
                if found.name is not None:
                    raise VerificationFailure(
                        Reason.INVALID_DISCLOSURE, "property disclosure in an array"
                    )
                paths[item[_ELLIPSIS]] = (*path, len(out))
                out.append(walk(found.value, (*path, len(out))))
            else:
                out.append(walk(item, (*path, len(out))))
        return out

    claims = walk_object(dict(payload), ())
    if len(paths) != len(by_digest):
        raise VerificationFailure(Reason.INVALID_DISCLOSURE, "disclosure not referenced")
    return Resolved(claims=claims, paths=paths)


def from_json_serialization(document: Any) -> str:
    """An SD-JWT in JWS JSON serialization (RFC 9901 §8), flattened or general, as the
    equivalent compact presentation ``<jwt>~<d1>~...~<kb>``.

    Thiqa's API speaks the compact form; this conversion lets a JSON-serialized SD-JWT be
    checked by the same code. The disclosures and the KB-JWT travel in the unprotected
    header of the (first) signature, and the KB-JWT's ``sd_hash`` covers the compact form
    built with that signature, so the first signature is the one converted. The unprotected
    header is otherwise ignored: nothing in it is signed.
    """
    if not isinstance(document, dict) or not isinstance(document.get("payload"), str):
        raise VerificationFailure(Reason.MALFORMED, "not a JWS JSON serialization")
    if "signatures" in document:
        signatures = document["signatures"]
        if not isinstance(signatures, list) or not signatures:
            raise VerificationFailure(Reason.MALFORMED, "no signatures")
        first, others = signatures[0], signatures[1:]
        if any(
            not isinstance(s, dict) or {"disclosures", "kb_jwt"} & set(s.get("header", {}))
            for s in others
        ):
            raise VerificationFailure(Reason.MALFORMED, "disclosures outside the first header")
    else:
        first = document
    if not isinstance(first, dict):
        raise VerificationFailure(Reason.MALFORMED, "not a JWS JSON serialization")
    protected, signature = first.get("protected"), first.get("signature")
    header = first.get("header", {})
    if (
        not isinstance(protected, str)
        or not isinstance(signature, str)
        or not isinstance(header, dict)
    ):
        raise VerificationFailure(Reason.MALFORMED, "protected and signature are required")
    disclosures = header.get("disclosures", [])
    kb_jwt = header.get("kb_jwt", "")
    if (
        not isinstance(disclosures, list)
        or not all(isinstance(d, str) and d and "~" not in d for d in disclosures)
        or not isinstance(kb_jwt, str)
        or "~" in kb_jwt
    ):
        raise VerificationFailure(Reason.MALFORMED, "disclosures and kb_jwt must be strings")
    issuer_jwt = f"{protected}.{document['payload']}.{signature}"
    return issuer_jwt + "~" + "".join(d + "~" for d in disclosures) + kb_jwt
