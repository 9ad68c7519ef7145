"""The trust list: other issuers whose credentials Thiqa verifies.

A JSON or YAML file named by ``THIQA_TRUSTED_ISSUERS``::

    issuers:
      - issuer: https://id.example.org          # exactly the credentials' iss
        name: Example national identity         # for people
        credential_types: [https://id.example.org/types/pid]
        status_hosts: [status.example.org]     # where its status lists may be fetched
        allow_private_addresses: false         # true: status hosts on a private network
        jwks: {keys: [{kty: EC, crv: P-256, x: ..., y: ..., kid: ...}]}
        x509_roots: [roots/national-ca.pem]     # and/or X.509 trust anchors (HAIP 1.0)

``x509_roots`` lists PEM files (relative to the trust list) or PEM text, for every type of the
entry; or maps a credential type to its own list. A credential whose header carries ``x5c``
is then accepted only if its chain builds to one of its type's roots at verification time.
An entry needs ``jwks``, ``x509_roots`` or both.

Keys come from this file only: Thiqa never fetches an issuer's keys from a URL a token names,
so trusting an issuer is a decision the operator makes and can review. The file is read once at
start; a file that does not parse, or that lists a bad key, stops the start with a clear error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from cryptography import x509

from service.core.keys import JWKError, VerificationKey, parse_public_jwk
from service.core.verify import TrustedIssuer
from service.core.x509 import load_pem_chain

__all__ = ["TrustListError", "load_trust_list", "parse_trust_list"]


class TrustListError(ValueError):
    pass


def _require(entry: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = entry.get(name)
    if not isinstance(value, kind) or not value:
        raise TrustListError(f"{where}: '{name}' must be a non-empty {kind.__name__}")
    return value


def _keys(jwks: Any, where: str) -> dict[str, VerificationKey]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise TrustListError(f"{where}: 'jwks' must be {{'keys': [...]}} with at least one key")
    keys: dict[str, VerificationKey] = {}
    for i, jwk in enumerate(jwks["keys"]):
        kid = jwk.get("kid") if isinstance(jwk, dict) else None
        if not isinstance(kid, str) or not kid:
            raise TrustListError(f"{where}: key {i} has no kid")
        if kid in keys:
            raise TrustListError(f"{where}: kid {kid} appears twice")
        try:
            keys[kid] = parse_public_jwk(jwk, kid=kid)
        except JWKError as exc:
            raise TrustListError(f"{where}: key {kid}: {exc}") from exc
    return keys


def _roots(value: Any, where: str, base: Path | None) -> tuple[x509.Certificate, ...]:
    if not isinstance(value, list) or not value:
        raise TrustListError(f"{where}: 'x509_roots' must be a non-empty list")
    roots: list[x509.Certificate] = []
    for item in value:
        if not isinstance(item, str) or not item:
            raise TrustListError(f"{where}: each x509 root is a PEM file or PEM text")
        if "-----BEGIN" in item:
            pem = item.encode("ascii", "replace")
        else:
            path = Path(item) if base is None else base / item
            try:
                pem = path.read_bytes()
            except OSError as exc:
                raise TrustListError(f"{where}: cannot read {path}: {exc.strerror}") from exc
        try:
            certificates = load_pem_chain(pem)
        except ValueError as exc:
            raise TrustListError(f"{where}: {item[:60]}: {exc}") from exc
        if not certificates:
            raise TrustListError(f"{where}: {item[:60]} holds no certificate")
        roots.extend(certificates)
    return tuple(roots)


def _anchors(
    value: Any, types: list[str], where: str, base: Path | None
) -> dict[str, tuple[x509.Certificate, ...]]:
    if value is None:
        return {}
    if isinstance(value, dict):
        unknown = set(value) - set(types)
        if unknown:
            raise TrustListError(f"{where}: x509_roots names types not in credential_types")
        return {vct: _roots(roots, f"{where}, {vct}", base) for vct, roots in value.items()}
    roots = _roots(value, where, base)
    return dict.fromkeys(types, roots)


def _host(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or "/" in value or "@" in value:
        raise TrustListError(f"{where}: status host {value!r} must be host or host:port")
    return value.lower()


def parse_trust_list(document: Any, *, base: Path | None = None) -> dict[str, TrustedIssuer]:
    if not isinstance(document, dict) or not isinstance(document.get("issuers"), list):
        raise TrustListError("the trust list needs a top-level 'issuers' list")
    trusted: dict[str, TrustedIssuer] = {}
    for i, entry in enumerate(document["issuers"]):
        if not isinstance(entry, dict):
            raise TrustListError(f"issuers[{i}] must be an object")
        identifier = _require(entry, "issuer", str, f"issuers[{i}]")
        where = f"issuer {identifier}"
        if urlsplit(identifier).scheme not in ("https", "http"):
            raise TrustListError(f"{where}: 'issuer' must be an http(s) URL")
        if identifier in trusted:
            raise TrustListError(f"{where}: listed twice")
        types = _require(entry, "credential_types", list, where)
        if not all(isinstance(t, str) and t for t in types):
            raise TrustListError(f"{where}: credential_types must be strings")
        hosts = entry.get("status_hosts", [])
        if not isinstance(hosts, list):
            raise TrustListError(f"{where}: status_hosts must be a list")
        private = entry.get("allow_private_addresses", False)
        if not isinstance(private, bool):
            raise TrustListError(f"{where}: allow_private_addresses must be true or false")
        name = entry.get("name")
        anchors = _anchors(entry.get("x509_roots"), types, where, base)
        if "jwks" not in entry and not anchors:
            raise TrustListError(f"{where}: needs 'jwks', 'x509_roots' or both")
        trusted[identifier] = TrustedIssuer(
            identifier=identifier,
            keys=_keys(entry.get("jwks"), where) if "jwks" in entry else {},
            anchors=anchors,
            types=frozenset(types),
            status_hosts=frozenset(_host(h, where) for h in hosts),
            name=name if isinstance(name, str) else None,
            private_status_hosts=private,
        )
    return trusted


def load_trust_list(path: Path) -> dict[str, TrustedIssuer]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustListError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise TrustListError(f"{path} is not valid JSON or YAML") from exc
    return parse_trust_list(document, base=path.parent)
