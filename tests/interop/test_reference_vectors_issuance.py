"""Thiqa issues every reference test case; the reference library's verifier accepts it.

``tests/core/test_sdjwt_vectors.py`` runs the other direction (Thiqa reads the reference
library's presentations). Here each case's ``specification.yml`` is read with its ``!sd``
tags, Thiqa issues those user claims with exactly that selective-disclosure structure inside
its SD-JWT VC envelope, Thiqa's holder discloses what ``holder_disclosed_claims`` says (with a
key-binding JWT when ``key_binding: True``), and ``sd_jwt.verifier.SDJWTVerifier`` must return
``expect_verified_user_claims`` plus exactly Thiqa's envelope (``iss``, ``iat``, ``exp``,
``vct``, ``status``, and ``cnf`` when bound). Thiqa's own verifier must agree.

Deviations from the reference run, each deliberate:

* ``typ`` is ``dc+sd-jwt`` and the payload carries ``vct`` and ``status`` (an SD-JWT VC, not
  the plain SD-JWT the reference generator makes); the reference verifier ignores them.
* ``header_mod`` adds ``"kid": 42`` to the header. Thiqa always writes a ``kid``, but as a
  string (RFC 7515 §4.1.4), so the extra parameter is honoured in name, not in type.
* The ``json_serialization_*`` cases are skipped: Thiqa writes and reads the compact
  serialization only (RFC 9901 §8's JSON serialization is optional).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from jwcrypto.jws import InvalidJWSSignature
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.utils.yaml_specification import _yaml_load_specification

from service.core import credential, holder
from service.core.credential import StatusReference
from service.core.encoding import b64url_decode, b64url_encode, json_dumps
from service.core.holder import ClaimPath
from service.core.keys import generate_signing_key, public_jwk
from service.core.sdjwt import SD, split
from service.core.status_list import StatusValue
from service.core.verify import Expectations, Policy, TrustedIssuer, conclude, inspect
from tests.core.helpers import VECTORS

from .helpers import reference_verify, signing_key_from_jwk

ROOT = VECTORS / "sd-jwt"
SETTINGS = yaml.safe_load((ROOT / "settings.yml").read_text("utf-8"))
ISSUER = SETTINGS["identifiers"]["issuer"]
VERIFIER = SETTINGS["identifiers"]["verifier"]
NONCE = SETTINGS["key_binding_nonce"]
IAT = SETTINGS["iat"]
EXP = SETTINGS["exp"]
NOW = IAT + 1
# An SD-JWT VC needs a type and a status reference; the vectors have neither, so these are
# Thiqa's additions to the envelope.
VCT = f"{ISSUER}/types/reference-vector"
STATUS = StatusReference(uri=f"{ISSUER}/status-lists/0123456789ab", idx=7)

ISSUER_KEY = signing_key_from_jwk(SETTINGS["key_settings"]["issuer_keys"][0])
HOLDER_KEY = signing_key_from_jwk(SETTINGS["key_settings"]["holder_key"])
HOLDER_JWK = public_jwk(HOLDER_KEY.key)
OTHER_KEY = generate_signing_key("ES256")

ALL_CASES = sorted(p.name for p in ROOT.iterdir() if p.is_dir())
JSON_CASES = frozenset({"json_serialization_flattened", "json_serialization_general"})
CASES = [c for c in ALL_CASES if c not in JSON_CASES]
PARAMS = [
    pytest.param(
        c,
        marks=pytest.mark.skip(
            reason="JWS JSON serialization of SD-JWT: Thiqa issues the compact form only "
            "(it reads both: tests/core/test_sdjwt_json_serialization.py)"
        ),
    )
    if c in JSON_CASES
    else c
    for c in ALL_CASES
]


# --- specification.yml with its !sd tags ------------------------------------------------------


@dataclass(frozen=True, eq=False)  # identity hash: a tagged node can be a mapping key
class _Tagged:
    value: Any


class SpecLoader(yaml.SafeLoader):
    """A safe loader that keeps ``!sd`` tags, on mapping keys and on sequence items."""


def _construct_sd(loader: SpecLoader, node: yaml.Node) -> _Tagged:
    if isinstance(node, yaml.ScalarNode):
        if node.style in ('"', "'"):
            return _Tagged(loader.construct_scalar(node))
        # The explicit tag hides the scalar's own type (42, 3.14, True, null): resolve it as
        # if the tag were not there.
        tag = loader.resolve(yaml.ScalarNode, node.value, (True, False))
        plain = yaml.ScalarNode(tag, node.value, node.start_mark, node.end_mark)
        return _Tagged(loader.construct_object(plain, deep=True))
    if isinstance(node, yaml.MappingNode):
        return _Tagged(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return _Tagged(loader.construct_sequence(node, deep=True))
    raise yaml.constructor.ConstructorError(None, None, "unsupported !sd node", node.start_mark)


SpecLoader.add_constructor("!sd", _construct_sd)


def marked(value: Any) -> Any:
    """The loaded tree with tags turned into Thiqa's :class:`SD` markers."""
    if isinstance(value, _Tagged):
        raise ValueError("!sd marks a mapping key or a sequence item, not a value")
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            tagged = isinstance(key, _Tagged)
            name = key.value if tagged else key
            if not isinstance(name, str):
                raise ValueError("claim names are strings")
            out[name] = SD(marked(item)) if tagged else marked(item)
        return out
    if isinstance(value, list):
        return [SD(marked(i.value)) if isinstance(i, _Tagged) else marked(i) for i in value]
    return value


def plain(value: Any) -> Any:
    """The marked tree without its markers: the user claims themselves."""
    if isinstance(value, SD):
        return plain(value.value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def as_reference(value: Any) -> Any:
    """The marked tree in the reference library's own form (SDObj on keys and items)."""
    if isinstance(value, dict):
        return {
            (SDObj(k) if isinstance(v, SD) else k): as_reference(
                v.value if isinstance(v, SD) else v
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            SDObj(as_reference(v.value)) if isinstance(v, SD) else as_reference(v) for v in value
        ]
    return value


def spec(case: str) -> dict[str, Any]:
    with (ROOT / case / "specification.yml").open(encoding="utf-8") as f:
        return yaml.load(f, Loader=SpecLoader)  # noqa: S506 - SafeLoader plus one tag


# --- holder_disclosed_claims -> Thiqa claim paths ---------------------------------------------


def chosen_paths(tree: Any, chosen: Any, path: ClaimPath = ()) -> list[ClaimPath]:
    """Paths of the disclosures the reference holder would send for ``chosen``.

    The reference holder's rules: in an object, a disclosable claim is sent when its entry is
    truthy; in an array, a disclosable element is sent unless its entry is False or None
    (missing); ``True`` for an object or array sends it without its own disclosable parts.
    """
    out: list[ClaimPath] = []
    if isinstance(tree, dict):
        if chosen is None:
            return out
        chosen = {} if chosen is True else chosen
        for name, item in tree.items():
            sub = chosen.get(name)
            if isinstance(item, SD):
                if not sub:
                    continue
                out.append((*path, name))
                item = item.value
            out += chosen_paths(item, sub, (*path, name))
    elif isinstance(tree, list):
        if chosen is None:
            return out
        chosen = [] if chosen is True else chosen
        for i, item in enumerate(tree):
            sub = chosen[i] if i < len(chosen) else None
            if isinstance(item, SD):
                if sub is None or sub is False:
                    continue
                out.append((*path, i))
                item = item.value
            out += chosen_paths(item, sub, (*path, i))
    return out


def deepest(paths: Sequence[ClaimPath]) -> list[ClaimPath]:
    """Thiqa's holder takes the claims wanted and adds the disclosures enclosing them."""
    return [p for p in paths if not any(len(q) > len(p) and q[: len(p)] == p for q in paths)]


# --- issuing, presenting, verifying ------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    spec: dict[str, Any]
    structure: dict[str, Any]
    issuance: str
    presentation: str
    bound: bool


def run(case: str) -> Run:
    document = spec(case)
    structure = marked(document["user_claims"])
    bound = document.get("key_binding", False) is True
    issuance = credential.issue(
        plain(structure),
        issuer=ISSUER,
        vct=VCT,
        key=ISSUER_KEY,
        status=STATUS,
        issued_at=IAT,
        expires_at=EXP,
        holder_jwk=HOLDER_JWK if bound else None,
        structure=lambda claims: structure,
    )
    wanted = deepest(chosen_paths(structure, document["holder_disclosed_claims"]))
    if bound:
        presentation = holder.present(
            issuance, wanted, holder_key=HOLDER_KEY, nonce=NONCE, audience=VERIFIER, now=NOW
        )
    else:
        presentation = holder.present(issuance, wanted)
    return Run(document, structure, issuance, presentation, bound)


def envelope(bound: bool) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "iat": IAT,
        "exp": EXP,
        "vct": VCT,
        "status": STATUS.claim(),
    }
    if bound:
        claims["cnf"] = {"jwk": HOLDER_JWK}
    return claims


def read_json(case: str, name: str) -> Any:
    return json.loads((ROOT / case / name).read_text("utf-8"))


def test_case_list() -> None:
    assert len(ALL_CASES) == 17
    assert len(CASES) == 15
    bound = {c for c in CASES if spec(c).get("key_binding") is True}
    assert bound == {"key_binding", "header_mod"}
    for case in CASES:
        assert spec(case).get("serialization_format", "compact") == "compact"
    for case in JSON_CASES:
        assert spec(case)["serialization_format"] == "json"


@pytest.mark.parametrize("case", ALL_CASES)  # reading the YAML needs no serialization
def test_loader_reads_the_tags_as_the_reference_library_does(case: str) -> None:
    document = spec(case)
    structure = marked(document["user_claims"])
    assert plain(structure) == read_json(case, "user_claims.json")
    with (ROOT / case / "specification.yml").open(encoding="utf-8") as f:
        theirs = _yaml_load_specification(f)
    assert as_reference(structure) == theirs["user_claims"]
    assert document["holder_disclosed_claims"] == theirs["holder_disclosed_claims"]
    assert document["expect_verified_user_claims"] == theirs["expect_verified_user_claims"]


@pytest.mark.parametrize("case", PARAMS)
def test_thiqa_issues_the_same_structure(case: str) -> None:
    """As many disclosures as the reference issuer made, with the same claim names."""
    result = run(case)

    def names(text: str) -> list[str]:
        # An array element's disclosure has no name: "" stands for it.
        decoded = [json.loads(b64url_decode(d)) for d in split(text).disclosures]
        return sorted(d[1] if len(d) == 3 else "" for d in decoded)

    reference = (ROOT / case / "sd_jwt_issuance.txt").read_text("utf-8").strip()
    assert names(result.issuance) == names(reference)


@pytest.mark.parametrize("case", PARAMS)
def test_thiqa_holder_chooses_what_the_reference_holder_chooses(case: str) -> None:
    result = run(case)
    reference_holder = SDJWTHolder(result.issuance)
    reference_holder.create_presentation(result.spec["holder_disclosed_claims"])
    assert sorted(split(result.presentation).disclosures) == sorted(reference_holder.hs_disclosures)


@pytest.mark.parametrize("case", PARAMS)
def test_reference_verifier_accepts_thiqa_issuance(case: str) -> None:
    result = run(case)
    verified = reference_verify(
        result.presentation,
        issuer=ISSUER,
        keys={ISSUER_KEY.kid: ISSUER_KEY.verification_key()},
        nonce=NONCE if result.bound else None,
        audience=VERIFIER if result.bound else None,
    )
    expected_envelope = envelope(result.bound)
    assert {k: v for k, v in verified.items() if k in expected_envelope} == expected_envelope
    user = {k: v for k, v in verified.items() if k not in expected_envelope}
    assert user == result.spec["expect_verified_user_claims"]
    # The vectors agree with themselves: the same user claims as verified_contents.json.
    contents = read_json(case, "verified_contents.json")
    assert user == {k: v for k, v in contents.items() if k not in ("iss", "iat", "exp", "cnf")}
    if result.bound:
        assert expected_envelope["cnf"] == contents["cnf"]


@pytest.mark.parametrize("case", PARAMS)
def test_thiqa_verifier_agrees(case: str) -> None:
    result = run(case)
    inspection = inspect(
        result.presentation,
        trusted={
            ISSUER: TrustedIssuer(
                identifier=ISSUER,
                keys={ISSUER_KEY.kid: ISSUER_KEY.verification_key()},
                types=frozenset({VCT}),
            )
        },
        policy=Policy(),
        expect=Expectations(nonce=NONCE, audience=VERIFIER) if result.bound else Expectations(),
        now=NOW,
    )
    verdict = conclude(inspection, StatusValue.VALID)
    assert verdict.valid, verdict.failures
    assert verdict.key_bound is result.bound
    assert verdict.claims == result.spec["expect_verified_user_claims"]


def test_header_mod_kid_is_written_as_a_string() -> None:
    result = run("header_mod")
    assert spec("header_mod")["extra_header_parameters"] == {"kid": 42}
    header = json.loads(b64url_decode(result.issuance.split(".")[0]))
    assert header == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": ISSUER_KEY.kid}


@pytest.mark.parametrize("case", ["key_binding", "header_mod"])
def test_reference_verifier_refuses_what_it_should(case: str) -> None:
    """The acceptance above means something: the same verifier refuses a forged signature,
    a claim the issuer did not sign, and a KB-JWT made for another nonce or audience."""
    result = run(case)
    keys = {ISSUER_KEY.kid: ISSUER_KEY.verification_key()}
    head, payload, signature = split(result.presentation).issuer_jwt.split(".")
    forged = OTHER_KEY.sign(f"{head}.{payload}".encode("ascii"))
    with pytest.raises(InvalidJWSSignature):
        reference_verify(
            result.presentation.replace(signature, b64url_encode(forged)),
            issuer=ISSUER,
            keys=keys,
            nonce=NONCE,
            audience=VERIFIER,
        )
    claims = json.loads(b64url_decode(payload))
    claims["exp"] += 1
    with pytest.raises(InvalidJWSSignature):
        reference_verify(
            result.presentation.replace(payload, b64url_encode(json_dumps(claims).encode())),
            issuer=ISSUER,
            keys=keys,
            nonce=NONCE,
            audience=VERIFIER,
        )
    with pytest.raises(ValueError, match="nonce"):
        reference_verify(
            result.presentation, issuer=ISSUER, keys=keys, nonce="another", audience=VERIFIER
        )
    with pytest.raises(ValueError, match="audience"):
        reference_verify(
            result.presentation,
            issuer=ISSUER,
            keys=keys,
            nonce=NONCE,
            audience="https://other.example",
        )
