"""Compact JWS parsing: strict shape, explicit typ, allow-listed alg, no key from the token."""

from __future__ import annotations

import pytest

from service.core import jws
from service.core.encoding import b64url_encode
from service.core.keys import generate_signing_key
from service.core.reasons import Reason, VerificationFailure

from .helpers import b64json, sign_raw, signature_holds

KEY = generate_signing_key("ES256")
TYP = frozenset({"dc+sd-jwt"})
PAYLOAD = {"iss": "https://issuer.example", "n": 1}


def header(**members: object) -> dict[str, object]:
    base: dict[str, object] = {"alg": "ES256", "typ": "dc+sd-jwt", "kid": KEY.kid}
    base.update(members)
    return {k: v for k, v in base.items() if v is not None}


def parse_reason(token: str, *, typ: frozenset[str] = TYP, **kwargs: Reason) -> Reason:
    with pytest.raises(VerificationFailure) as caught:
        jws.parse(token, typ=typ, **kwargs)
    return caught.value.reason


def test_encode_then_parse_round_trip() -> None:
    token = jws.encode(PAYLOAD, KEY, typ="dc+sd-jwt")
    parsed = jws.parse(token, typ=TYP)
    assert dict(parsed.header) == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": KEY.kid}
    assert dict(parsed.payload) == PAYLOAD
    assert parsed.alg == "ES256"
    assert parsed.kid == KEY.kid
    head, body, _ = token.split(".")
    assert parsed.signing_input == f"{head}.{body}".encode("ascii")
    KEY.verification_key().verify(parsed.signature, parsed.signing_input)


def test_encode_without_kid_and_with_extra_header() -> None:
    token = jws.encode(PAYLOAD, KEY, typ="kb+jwt", include_kid=False, extra_header={"x": 1})
    parsed = jws.parse(token, typ=frozenset({"kb+jwt"}))
    assert parsed.kid is None
    assert dict(parsed.header) == {"alg": "ES256", "typ": "kb+jwt", "x": 1}


def test_encode_keeps_arabic_as_utf8_in_the_payload() -> None:
    token = jws.encode({"name": "أمينة"}, KEY, typ="dc+sd-jwt")
    parsed = jws.parse(token, typ=TYP)
    assert parsed.payload["name"] == "أمينة"


@pytest.mark.parametrize(
    "found", ["dc+sd-jwt", "DC+SD-JWT", "application/dc+sd-jwt", "Application/Dc+Sd-Jwt"]
)
def test_typ_compares_case_insensitively_with_optional_application_prefix(found: str) -> None:
    token = sign_raw(header(typ=found), PAYLOAD, KEY)
    assert jws.parse(token, typ=TYP).header["typ"] == found


def test_normalise_typ() -> None:
    assert jws.normalise_typ("Application/KB+JWT") == "kb+jwt"
    assert jws.normalise_typ("kb+jwt") == "kb+jwt"
    assert jws.normalise_typ("application/application/x") == "application/x"


@pytest.mark.parametrize("typ", ["JWT", "vc+sd-jwt", "kb+jwt", "dc+sd-jwt ", "text/dc+sd-jwt", ""])
def test_rejects_other_typ(typ: str) -> None:
    token = sign_raw(header(typ=typ), PAYLOAD, KEY)
    assert parse_reason(token) is Reason.WRONG_TYPE


@pytest.mark.parametrize("typ", [None, 1, ["dc+sd-jwt"], {"v": "dc+sd-jwt"}])
def test_rejects_missing_or_non_string_typ(typ: object) -> None:
    members = header()
    members.pop("typ")
    if typ is not None:
        members["typ"] = typ
    token = sign_raw(members, PAYLOAD, KEY)
    assert parse_reason(token) is Reason.WRONG_TYPE


@pytest.mark.parametrize(
    "alg", ["none", "None", "NONE", "HS256", "RS256", "PS256", "ES512", "es256"]
)
def test_rejects_algorithm_outside_the_allow_list(alg: str) -> None:
    token = sign_raw(header(alg=alg), PAYLOAD, KEY)
    assert parse_reason(token) is Reason.UNSUPPORTED_ALGORITHM


@pytest.mark.parametrize("alg", [None, 256, ["ES256"], True])
def test_rejects_missing_or_non_string_alg(alg: object) -> None:
    members = header()
    members.pop("alg")
    if alg is not None:
        members["alg"] = alg
    token = sign_raw(members, PAYLOAD, KEY)
    assert parse_reason(token) is Reason.UNSUPPORTED_ALGORITHM


def test_alg_is_checked_before_typ() -> None:
    token = sign_raw(header(alg="none", typ="JWT"), PAYLOAD, KEY)
    assert parse_reason(token) is Reason.UNSUPPORTED_ALGORITHM


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a..c",
        ".b.c",
        "a.b.",  # alg "none" style: no signature
        "a.b.c.",
    ],
)
def test_rejects_token_that_is_not_three_non_empty_parts(token: str) -> None:
    assert parse_reason(token) is Reason.MALFORMED


def test_uses_the_callers_failure_code_for_shape_errors() -> None:
    assert parse_reason("a.b", failure=Reason.INVALID_KEY_BINDING) is Reason.INVALID_KEY_BINDING
    good = sign_raw(header(), PAYLOAD, KEY)
    head, body, sig = good.split(".")
    assert parse_reason(f"{head}.{body}.{sig}=", failure=Reason.INVALID_KEY_BINDING) is (
        Reason.INVALID_KEY_BINDING
    )


def test_rejects_unsigned_alg_none_token_as_unsupported_algorithm() -> None:
    # RFC 7515 §A.5 form: no signature at all. The algorithm is what is wrong with it.
    token = b64json({"alg": "none", "typ": "dc+sd-jwt"}) + "." + b64json(PAYLOAD) + "."
    assert parse_reason(token) is Reason.UNSUPPORTED_ALGORITHM


def test_rejects_token_with_allowed_alg_and_empty_signature() -> None:
    head, body, _ = sign_raw(header(), PAYLOAD, KEY).split(".")
    assert parse_reason(f"{head}.{body}.") is Reason.MALFORMED
    assert parse_reason(f"{head}.{body}.", failure=Reason.INVALID_KEY_BINDING) is (
        Reason.INVALID_KEY_BINDING
    )


def _enc(raw: bytes) -> str:
    return b64url_encode(raw)


def _variants() -> dict[str, tuple[str, Reason]]:
    good = sign_raw(header(), PAYLOAD, KEY)
    head, body, sig = good.split(".")

    def with_payload(raw: bytes) -> str:
        return f"{head}.{_enc(raw)}.{sig}"

    def with_header(raw: bytes) -> str:
        return f"{_enc(raw)}.{body}.{sig}"

    standard = body.replace("-", "+").replace("_", "/")
    return {
        "padded header": (f"{head}=.{body}.{sig}", Reason.MALFORMED),
        "padded signature": (f"{head}.{body}.{sig}==", Reason.MALFORMED),
        "standard alphabet": (f"{head}.{standard}x.{sig}", Reason.MALFORMED),
        "space in header": (f"{head} .{body}.{sig}", Reason.MALFORMED),
        "header not JSON": (with_header(b"not json"), Reason.MALFORMED),
        "payload an array": (with_payload(b"[1,2]"), Reason.MALFORMED),
        "header an array": (with_header(b"[]"), Reason.MALFORMED),
        "header without alg": (with_header(b"{}"), Reason.UNSUPPORTED_ALGORITHM),
        "duplicate header member": (
            with_header(b'{"alg":"ES256","alg":"ES256","typ":"dc+sd-jwt"}'),
            Reason.MALFORMED,
        ),
        "duplicate payload member": (with_payload(b'{"iss":1,"iss":2}'), Reason.MALFORMED),
        "NaN in payload": (with_payload(b'{"exp":NaN}'), Reason.MALFORMED),
        "overflowing number": (with_payload(b'{"exp":1e400}'), Reason.MALFORMED),
        "huge integer": (with_payload(b'{"exp":' + b"9" * 5000 + b"}"), Reason.MALFORMED),
        "UTF-16 payload": (with_payload('{"a":1}'.encode("utf-16")), Reason.MALFORMED),
        "BOM in header": (
            with_header(b'\xef\xbb\xbf{"alg":"ES256","typ":"dc+sd-jwt"}'),
            Reason.MALFORMED,
        ),
    }


@pytest.mark.parametrize("case", list(_variants()))
def test_rejects_encoding_that_is_not_the_one_strict_form(case: str) -> None:
    token, expected = _variants()[case]
    assert parse_reason(token) is expected


@pytest.mark.parametrize("member", [{"crit": ["exp"]}, {"crit": []}, {"b64": False}, {"b64": True}])
def test_rejects_crit_and_b64_header_parameters(member: dict[str, object]) -> None:
    token = sign_raw(header(**member), PAYLOAD, KEY)
    assert parse_reason(token) is Reason.MALFORMED


@pytest.mark.parametrize("kid", ["", 42, ["k"], {"k": 1}, "k" * 257, "a\nb", "a\x00b", "\u200e"])
def test_rejects_invalid_kid(kid: object) -> None:
    token = sign_raw(header(kid=kid), PAYLOAD, KEY)
    assert parse_reason(token) is Reason.MALFORMED


def test_accepts_kid_of_the_maximum_length() -> None:
    kid = "k" * jws.MAX_KID_LENGTH
    assert jws.parse(sign_raw(header(kid=kid), PAYLOAD, KEY), typ=TYP).kid == kid


def test_accepts_token_without_kid() -> None:
    members = header()
    members.pop("kid")
    assert jws.parse(sign_raw(members, PAYLOAD, KEY), typ=TYP).kid is None


def test_embedded_key_headers_are_carried_but_never_used() -> None:
    # jwk/jku/x5u/x5c are attacker-chosen; parse hands back no key, the caller chooses it.
    attacker = generate_signing_key("ES256")
    members = header(
        jwk=attacker.verification_key().public_jwk(), jku="https://evil.example/jwks", x5c=["AA"]
    )
    parsed = jws.parse(sign_raw(members, PAYLOAD, attacker), typ=TYP)
    assert not signature_holds(KEY.verification_key(), parsed.signature, parsed.signing_input)
    assert not hasattr(parsed, "key")


def test_rejects_header_nested_too_deeply() -> None:
    deep: object = "x"
    for _ in range(20):
        deep = {"a": deep}
    token = sign_raw(header(x=deep), PAYLOAD, KEY)
    assert parse_reason(token) is Reason.MALFORMED


def test_signing_input_is_exactly_the_first_two_segments() -> None:
    # The signature covers the text as sent, not a re-serialisation of the parsed JSON.
    spaced_payload = b64url_encode(b'{ "iss" : "https://issuer.example" }')
    token = sign_raw(header(), spaced_payload, KEY)
    parsed = jws.parse(token, typ=TYP)
    assert parsed.signing_input.endswith(b"." + spaced_payload.encode("ascii"))
    KEY.verification_key().verify(parsed.signature, parsed.signing_input)
