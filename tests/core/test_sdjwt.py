"""SD-JWT (RFC 9901): disclosures, digests, issuance encoding and strict processing.

The negative cases are signed by a real issuer key and run through the whole verification
pipeline (``verify.inspect``), so each one proves that the presentation is refused for exactly
the expected reason once the signature holds, and that no status can make it valid.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from service.core import sdjwt
from service.core.credential import NEVER_DISCLOSABLE
from service.core.encoding import b64url_decode, b64url_encode, json_loads
from service.core.reasons import Reason, VerificationFailure
from service.core.sdjwt import SD, digest, disclose, make_disclosure, mark_all, split
from service.core.verify import Policy

from .helpers import assert_rejected, envelope, reasons, ref, run, sd_jwt

# --- disclosures and digests ---------------------------------------------------------------


def test_digest_matches_rfc9901_object_property_example() -> None:
    # RFC 9901 §4.2.1: the digest is over the disclosure text exactly as sent.
    encoded = "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
    assert b64url_decode(encoded).decode() == '["_26bc4LT-ac6q2KI6cBW5es", "family_name", "Möbius"]'
    assert digest(encoded) == "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"


def test_digest_matches_rfc9901_array_element_example() -> None:
    encoded = "WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIkZSIl0"
    assert digest(encoded) == "w0I8EKcdCtUPkGCNUrfwVp2xEgNjtoIDlOxc9-PlOhs"


@pytest.mark.parametrize("alg", ["sha-256", "sha-384", "sha-512"])
def test_digest_is_base64url_of_the_named_hash_over_the_ascii_text(alg: str) -> None:
    encoded = make_disclosure("x", name="n").encoded
    expected = hashlib.new(alg.replace("-", ""), encoded.encode("ascii")).digest()
    assert digest(encoded, alg) == b64url_encode(expected)


def test_make_disclosure_for_an_object_property() -> None:
    disclosure = make_disclosure("أمينة", name="given_name", salt="c2FsdA")
    assert json_loads(b64url_decode(disclosure.encoded)) == ["c2FsdA", "given_name", "أمينة"]
    assert (disclosure.salt, disclosure.name, disclosure.value) == ("c2FsdA", "given_name", "أمينة")
    # Compact JSON, UTF-8 kept as UTF-8.
    assert b64url_decode(disclosure.encoded) == '["c2FsdA","given_name","أمينة"]'.encode()


def test_make_disclosure_for_an_array_element() -> None:
    disclosure = make_disclosure("FR", salt="c2FsdA")
    assert json_loads(b64url_decode(disclosure.encoded)) == ["c2FsdA", "FR"]
    assert disclosure.name is None


def test_salts_are_fresh_128_bit_values() -> None:
    salts = {make_disclosure(1, name="a").salt for _ in range(50)}
    assert len(salts) == 50
    assert all(len(b64url_decode(s)) == sdjwt.SALT_BYTES == 16 for s in salts)


# --- encoding at issuance ------------------------------------------------------------------


def test_encode_hides_marked_properties_behind_sorted_digests_and_decoys() -> None:
    fragment, disclosures = sdjwt.encode(
        {"a": SD(1), "b": SD("x"), "clear": True}, decoys=lambda: 2
    )
    assert fragment["clear"] is True
    assert "a" not in fragment
    assert "b" not in fragment
    assert len(disclosures) == 2
    assert len(fragment["_sd"]) == 4  # two real digests, two decoys
    assert fragment["_sd"] == sorted(fragment["_sd"])
    assert {digest(d.encoded) for d in disclosures} <= set(fragment["_sd"])
    assert {(d.name, d.value) for d in disclosures} == {("a", 1), ("b", "x")}


def test_encode_adds_one_to_three_decoys_by_default() -> None:
    counts = set()
    for _ in range(60):
        fragment, disclosures = sdjwt.encode({"a": SD(1)})
        counts.add(len(fragment["_sd"]) - len(disclosures))
    assert counts <= {1, 2, 3}
    assert len(counts) > 1


def test_encode_without_marks_adds_no_sd_array() -> None:
    fragment, disclosures = sdjwt.encode({"a": 1, "b": {"c": [1, 2]}})
    assert fragment == {"a": 1, "b": {"c": [1, 2]}}
    assert disclosures == []


def test_encode_marks_array_elements_with_ellipsis_digests() -> None:
    fragment, disclosures = sdjwt.encode({"n": [SD("MA"), "FR"]}, decoys=lambda: 0)
    assert fragment["n"][1] == "FR"
    assert fragment["n"][0] == {"...": digest(disclosures[0].encoded)}
    assert disclosures[0].name is None
    assert disclosures[0].value == "MA"


def test_encode_nests_disclosures_recursively() -> None:
    fragment, disclosures = sdjwt.encode(mark_all({"address": {"locality": "Rabat"}}))
    assert len(disclosures) == 2
    inner, outer = disclosures  # the inner one is made first
    assert inner.name == "locality"
    assert outer.name == "address"
    assert digest(inner.encoded) in outer.value["_sd"]
    assert digest(outer.encoded) in fragment["_sd"]


@pytest.mark.parametrize("name", ["_sd", "...", "_sd_alg"])
def test_encode_refuses_reserved_claim_names(name: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        sdjwt.encode({name: 1})
    with pytest.raises(ValueError, match="reserved"):
        sdjwt.encode({"outer": {name: SD(1)}})


def test_encode_refuses_a_bare_sd_value() -> None:
    with pytest.raises(TypeError):
        sdjwt.encode({"a": SD(SD(1))})


@pytest.mark.parametrize("alg", ["sha-384", "sha-512"])
def test_encode_uses_the_requested_hash(alg: str) -> None:
    fragment, disclosures = sdjwt.encode({"a": SD(1)}, hash_alg=alg, decoys=lambda: 0)
    assert fragment["_sd"] == [digest(disclosures[0].encoded, alg)]
    assert disclose({**fragment, "_sd_alg": alg}, [disclosures[0].encoded]).claims == {"a": 1}


def test_mark_all_marks_every_property_and_element_recursively() -> None:
    marked = mark_all({"a": 1, "b": {"c": [2, {"d": 3}]}})
    assert marked == {"a": SD(1), "b": SD({"c": SD([SD(2), SD({"d": SD(3)})])})}


# --- split -------------------------------------------------------------------------------


def test_split_issuance_form() -> None:
    parts = split("jwt~d1~d2~")
    assert parts.issuer_jwt == "jwt"
    assert parts.disclosures == ("d1", "d2")
    assert parts.kb_jwt is None
    assert parts.hashed_part == "jwt~d1~d2~"


def test_split_with_key_binding() -> None:
    parts = split("jwt~d1~kb.jwt.sig")
    assert parts.disclosures == ("d1",)
    assert parts.kb_jwt == "kb.jwt.sig"
    assert parts.hashed_part == "jwt~d1~"


def test_split_without_disclosures() -> None:
    parts = split("jwt~")
    assert parts.disclosures == ()
    assert parts.kb_jwt is None
    assert split("jwt~kb").kb_jwt == "kb"


@pytest.mark.parametrize("text", ["jwt", "", "~", "~d1~", "jwt~~", "jwt~d1~~", "jwt~~kb"])
def test_split_rejects_missing_tilde_and_empty_components(text: str) -> None:
    with pytest.raises(VerificationFailure) as caught:
        split(text)
    assert caught.value.reason is Reason.MALFORMED


# --- disclose ----------------------------------------------------------------------------


def test_disclose_everything_restores_the_claims() -> None:
    claims = {"given_name": "أمينة", "address": {"locality": "Rabat"}, "n": ["MA", "FR"]}
    fragment, disclosures = sdjwt.encode(mark_all(claims))
    resolved = disclose(fragment, [d.encoded for d in disclosures])
    assert resolved.claims == claims
    assert sorted(resolved.paths.values(), key=str) == sorted(
        [("given_name",), ("address",), ("address", "locality"), ("n",), ("n", 0), ("n", 1)],
        key=str,
    )


def test_disclose_nothing_leaves_only_clear_claims() -> None:
    fragment, _ = sdjwt.encode({"a": SD(1), "b": 2, "n": [SD(1), 3]})
    assert disclose(fragment, []).claims == {"b": 2, "n": [3]}


def test_disclose_order_of_disclosures_does_not_matter() -> None:
    fragment, disclosures = sdjwt.encode(mark_all({"a": 1, "b": {"c": 2}}))
    encoded = [d.encoded for d in disclosures]
    assert disclose(fragment, encoded).claims == disclose(fragment, encoded[::-1]).claims


def test_disclose_allows_never_disclosable_names_below_the_top_level() -> None:
    inner = make_disclosure(5, name="exp")
    payload = {"event": {"_sd": [ref(inner)]}}
    assert disclose(payload, [inner.encoded], never_disclosable=NEVER_DISCLOSABLE).claims == {
        "event": {"exp": 5}
    }


@pytest.mark.parametrize("name", sorted(NEVER_DISCLOSABLE))
def test_disclose_refuses_never_disclosable_names_at_the_top_level(name: str) -> None:
    item = make_disclosure("x", name=name)
    with pytest.raises(VerificationFailure, match="may not be disclosed") as caught:
        disclose({"_sd": [ref(item)]}, [item.encoded], never_disclosable=NEVER_DISCLOSABLE)
    assert caught.value.reason is Reason.INVALID_DISCLOSURE


# --- negative cases through the pipeline -------------------------------------------------


def check(payload: dict[str, Any], disclosures: list[Any], *expected: Reason, **kw: Any) -> None:
    inspection = run(sd_jwt(payload, disclosures), **kw)
    assert inspection.signature_verified  # so the rejection below is the disclosure's
    assert_rejected(inspection, *expected)


def test_control_a_well_formed_hand_built_presentation_is_valid() -> None:
    # The builders of the negative cases below yield a valid presentation when nothing is wrong.
    name = make_disclosure("Amina", name="given_name")
    element = make_disclosure("MA")
    payload = envelope(_sd=[ref(name)], n=[{"...": ref(element)}])
    inspection = run(sd_jwt(payload, [name, element]))
    assert inspection.failures == ()
    assert inspection.claims == {"given_name": "Amina", "n": ["MA"]}


def _chain(depth: int) -> str:
    """A presentation whose one claim sits ``depth`` disclosures deep: ``n.n.n...``."""
    inner: dict[str, Any] = {"leaf": 1}
    disclosures = []
    for _ in range(depth):
        disclosure = make_disclosure(inner, name="n")
        disclosures.append(disclosure)
        inner = {"_sd": [ref(disclosure)]}
    return sd_jwt(envelope(**inner), disclosures)


def test_disclosures_nest_up_to_the_depth_limit() -> None:
    assert run(_chain(sdjwt.MAX_DISCLOSURE_DEPTH - 1)).failures == ()


@pytest.mark.parametrize("depth", [sdjwt.MAX_DISCLOSURE_DEPTH + 1, 500])
def test_rejects_disclosures_nested_beyond_the_limit(depth: int) -> None:
    """500 levels fit in the largest credential a deployment may accept (60 KiB) and used to
    end in RecursionError, a 500, instead of a verdict."""
    presentation = _chain(depth)
    inspection = run(presentation, policy=Policy(max_size=len(presentation)))
    assert_rejected(inspection, Reason.INVALID_DISCLOSURE)


def test_rejects_unreferenced_disclosure() -> None:
    used = make_disclosure("Amina", name="given_name")
    stray = make_disclosure("Benali", name="family_name")
    check(envelope(_sd=[ref(used)]), [used, stray], Reason.INVALID_DISCLOSURE)


def test_rejects_unreferenced_disclosure_hidden_inside_an_unreferenced_one() -> None:
    inner = make_disclosure("Rabat", name="locality")
    outer = make_disclosure({"_sd": [ref(inner)]}, name="address")
    check(envelope(_sd=[]), [outer, inner], Reason.INVALID_DISCLOSURE)


def test_rejects_disclosure_sent_twice() -> None:
    item = make_disclosure("Amina", name="given_name")
    check(envelope(_sd=[ref(item)]), [item, item], Reason.INVALID_DISCLOSURE)


def test_rejects_digest_referenced_twice_in_one_sd_array() -> None:
    item = make_disclosure("Amina", name="given_name")
    check(envelope(_sd=[ref(item), ref(item)]), [item], Reason.INVALID_DISCLOSURE)


def test_rejects_digest_referenced_in_two_places() -> None:
    item = make_disclosure("Amina", name="given_name")
    payload = envelope(_sd=[ref(item)], other={"_sd": [ref(item)]})
    check(payload, [item], Reason.INVALID_DISCLOSURE)


def test_rejects_array_digest_referenced_twice() -> None:
    item = make_disclosure("MA")
    payload = envelope(n=[{"...": ref(item)}, {"...": ref(item)}])
    check(payload, [item], Reason.INVALID_DISCLOSURE)


def test_rejects_undisclosed_digest_repeated() -> None:
    # A repeated digest is refused even when no disclosure for it is sent.
    decoy = b64url_encode(hashlib.sha256(b"decoy").digest())
    check(envelope(_sd=[decoy, decoy]), [], Reason.INVALID_DISCLOSURE)


@pytest.mark.parametrize("name", ["_sd", "..."])
def test_rejects_disclosure_with_reserved_name(name: str) -> None:
    item = make_disclosure(["x"], name=name)
    check(envelope(_sd=[ref(item)]), [item], Reason.INVALID_DISCLOSURE)


def test_rejects_disclosure_named_sd_alg() -> None:
    item = make_disclosure("sha-512", name="_sd_alg")
    check(envelope(_sd=[ref(item)]), [item], Reason.INVALID_DISCLOSURE)


def test_rejects_disclosed_name_already_in_the_payload() -> None:
    item = make_disclosure("Forged", name="given_name")
    check(envelope(_sd=[ref(item)], given_name="Amina"), [item], Reason.INVALID_DISCLOSURE)


def test_rejects_two_disclosures_of_the_same_name() -> None:
    first = make_disclosure("Amina", name="given_name")
    second = make_disclosure("Forged", name="given_name")
    check(envelope(_sd=[ref(first), ref(second)]), [first, second], Reason.INVALID_DISCLOSURE)


def test_rejects_array_element_disclosure_referenced_from_sd() -> None:
    item = make_disclosure("MA")
    check(envelope(_sd=[ref(item)]), [item], Reason.INVALID_DISCLOSURE)


def test_rejects_object_property_disclosure_referenced_from_an_array() -> None:
    item = make_disclosure("MA", name="nationality")
    check(envelope(n=[{"...": ref(item)}]), [item], Reason.INVALID_DISCLOSURE)


@pytest.mark.parametrize("salt", [1, None, ["s"], {"s": 1}, True])
def test_rejects_disclosure_whose_salt_is_not_a_string(salt: Any) -> None:
    encoded = b64url_encode(f'[{_json(salt)},"given_name","Amina"]'.encode())
    check(envelope(_sd=[digest(encoded)]), [encoded], Reason.INVALID_DISCLOSURE)


@pytest.mark.parametrize(
    "array",
    [
        '["c2FsdA","given_name","Amina","extra"]',
        '["c2FsdA"]',
        "[]",
        '{"salt":"c2FsdA","name":"given_name"}',
        '"c2FsdA"',
        '["c2FsdA",1,"Amina"]',  # claim name not a string
        '["c2FsdA",null,"Amina"]',
    ],
)
def test_rejects_disclosure_that_is_not_a_two_or_three_element_array(array: str) -> None:
    encoded = b64url_encode(array.encode())
    check(envelope(_sd=[digest(encoded)]), [encoded], Reason.INVALID_DISCLOSURE)


def _standard_alphabet_disclosure() -> str:
    for n in range(64):
        encoded = make_disclosure("?>" * n, name="a", salt="c2FsdA").encoded
        if "-" in encoded and "_" in encoded:
            return encoded.replace("-", "+").replace("_", "/")
    raise AssertionError("no disclosure with - and _")  # pragma: no cover


@pytest.mark.parametrize(
    "encoded",
    [
        b64url_encode(b'["c2FsdA","a","b"]') + "=",  # padded
        b64url_encode(b"not json"),
        b64url_encode(b'["c2FsdA","a",1,"a"]')[:-1],  # length % 4 == 1 or truncated
        _standard_alphabet_disclosure(),
        b64url_encode(b'["c2FsdA","a",NaN]'),
        b64url_encode(b'["c2FsdA","a",{"x":1,"x":2}]'),
    ],
)
def test_rejects_disclosure_that_is_not_strict_base64url_json(encoded: str) -> None:
    check(envelope(_sd=[digest(encoded)]), [encoded], Reason.INVALID_DISCLOSURE)


@pytest.mark.parametrize("sd", ["digest", {"d": 1}, 1, None])
def test_rejects_sd_that_is_not_an_array(sd: Any) -> None:
    check(envelope(_sd=sd if sd is not None else {}), [], Reason.INVALID_DISCLOSURE)


def test_rejects_sd_digest_that_is_not_a_string() -> None:
    check(envelope(_sd=[1]), [], Reason.INVALID_DISCLOSURE)
    check(envelope(n=[{"...": 1}]), [], Reason.INVALID_DISCLOSURE)


def test_rejects_ellipsis_with_sibling_keys() -> None:
    item = make_disclosure("MA")
    check(envelope(n=[{"...": ref(item), "x": 1}]), [item], Reason.INVALID_DISCLOSURE)
    # Also when the element is not disclosed.
    check(envelope(n=[{"...": ref(item), "x": 1}]), [], Reason.INVALID_DISCLOSURE)


def test_rejects_ellipsis_key_outside_an_array() -> None:
    item = make_disclosure("MA")
    check(envelope(obj={"...": ref(item)}), [item], Reason.INVALID_DISCLOSURE)


def test_rejects_sd_alg_below_the_top_level() -> None:
    check(envelope(obj={"_sd_alg": "sha-256", "a": 1}), [], Reason.INVALID_DISCLOSURE)


@pytest.mark.parametrize("alg", ["md5", "sha-1", "SHA-256", "sha256", 256, None])
def test_rejects_unsupported_sd_alg(alg: Any) -> None:
    item = make_disclosure("Amina", name="given_name")
    payload = envelope(_sd=[ref(item)])
    payload["_sd_alg"] = alg
    check(payload, [item], Reason.INVALID_DISCLOSURE)


def test_rejects_disclosure_hashed_with_another_algorithm_than_sd_alg() -> None:
    item = make_disclosure("Amina", name="given_name")
    payload = envelope(_sd=[digest(item.encoded, "sha-384")])  # _sd_alg says sha-256
    check(payload, [item], Reason.INVALID_DISCLOSURE)


# SD-JWT VC §3.2.2: these claims are never selectively disclosed. A disclosure carrying one of
# them is refused even when the signed payload lacks the claim, and what it carries is never
# used: a status smuggled in a disclosure is no status reference; an exp is no expiry.
NEVER_CASES: list[tuple[str, Any, set[Reason], dict[str, Any]]] = [
    ("iss", "https://issuer.thiqa.example", {Reason.INVALID_DISCLOSURE}, {}),
    ("exp", 4_000_000_000, {Reason.INVALID_DISCLOSURE}, {"policy": Policy(require_exp=False)}),
    ("nbf", 0, {Reason.INVALID_DISCLOSURE}, {}),
    ("cnf", {"jwk": {"kty": "OKP"}}, {Reason.INVALID_DISCLOSURE}, {}),
    (
        "status",
        {"status_list": {"idx": 1, "uri": "https://x"}},
        {Reason.INVALID_DISCLOSURE, Reason.INVALID_STATUS_REFERENCE},
        {},
    ),
    (
        "vct",
        "https://thiqa.example/credentials/national-id",
        {Reason.INVALID_DISCLOSURE, Reason.MALFORMED},
        {},
    ),
    ("vct#integrity", "sha256-x", {Reason.INVALID_DISCLOSURE}, {}),
]


@pytest.mark.parametrize(
    ("name", "value", "expected", "kw"), NEVER_CASES, ids=[c[0] for c in NEVER_CASES]
)
def test_rejects_top_level_disclosure_of_a_never_disclosable_claim(
    name: str, value: Any, expected: set[Reason], kw: dict[str, Any]
) -> None:
    item = make_disclosure(value, name=name)
    payload = envelope(_sd=[ref(item)])
    if name != "iss":  # iss must stay in the clear: it chooses the issuer's keys
        payload.pop(name, None)
    inspection = run(sd_jwt(payload, [item]), **kw)
    assert inspection.signature_verified
    assert_rejected(inspection, *expected)
    disclosure_failures = [
        f.message for f in inspection.failures if f.reason is Reason.INVALID_DISCLOSURE
    ]
    if name != "iss":
        assert any("may not be disclosed" in m for m in disclosure_failures)
    if name == "status":
        assert inspection.status_ref is None  # the smuggled reference is not used


@pytest.mark.parametrize("name", ["exp", "cnf", "status", "vct"])
def test_rejects_never_disclosable_claim_disclosed_beside_its_clear_value(name: str) -> None:
    payload = envelope()
    if name == "cnf":
        payload["cnf"] = {"jwk": {"kty": "EC"}}
    item = make_disclosure(payload[name], name=name)
    payload["_sd"] = [ref(item)]
    check(payload, [item], Reason.INVALID_DISCLOSURE)


def test_tampered_disclosure_value_is_unreferenced() -> None:
    item = make_disclosure("Amina", name="given_name", salt="c2FsdA")
    forged = make_disclosure("Forged", name="given_name", salt="c2FsdA")
    inspection = run(sd_jwt(envelope(_sd=[ref(item)]), [forged]))
    assert_rejected(inspection, Reason.INVALID_DISCLOSURE)


def test_same_json_in_another_spelling_is_another_disclosure() -> None:
    # The digest is over the encoded text: a re-serialised disclosure does not match.
    item = make_disclosure("Amina", name="given_name", salt="c2FsdA")
    spaced = b64url_encode(b'["c2FsdA", "given_name", "Amina"]')
    assert json_loads(b64url_decode(spaced)) == json_loads(b64url_decode(item.encoded))
    check(envelope(_sd=[ref(item)]), [spaced], Reason.INVALID_DISCLOSURE)
    assert reasons(run(sd_jwt(envelope(_sd=[ref(item)]), [item]))) == set()


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
