"""Schemathesis over the live OpenAPI document: no 5xx, and every answer is the documented one.

A real Thiqa (real HTTP, real Redis) serves ``/openapi.json``; the ``schemathesis run`` CLI
(4.x, in a subprocess, so its own Hypothesis settings and output stay apart from pytest's)
loads it from there and runs every phase (examples, coverage, fuzzing, stateful) with every
check (``--checks all``): ``not_a_server_error``, status code, content type, headers and body
conformance to the document, negative data rejected, positive data accepted, ``Allow`` on a
405, authentication not ignored, use after free, and the rest. Generation is deterministic
(``--generation-deterministic``) and bounded (``-n``), so a run is the same every time.

Two runs, because one check cannot hold everywhere: ``positive_data_acceptance`` expects any
request the schema allows to be accepted. Some operations refuse schema-valid requests by
design, with a documented code, for what JSON Schema cannot say (listed in
``SEMANTIC_VALIDATION`` with their reasons); they run with 400, 410 and 422 added to the
statuses that check expects. Every other operation, ``POST /v1/verify`` first (any
well-formed request gets a 200 verdict), runs with the check as Schemathesis ships it.
(Per-operation settings in ``schemathesis.toml`` would be neater, but 4.32 applies an
operation's check settings to other operations of the same method.)
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from service.api.server import BackgroundServer

#: Operations that refuse some schema-valid requests by design, and why.
SEMANTIC_VALIDATION = {
    ("POST", "/v1/credentials"): "422 invalid_claims / invalid_holder_key / unsupported_vct: "
    "claim rules, a JWK that is a point on its curve, a type this issuer issues",
    ("POST", "/v1/credential-offers"): "422 invalid_claims / unsupported_vct, as above",
    ("POST", "/v1/presentation-requests"): "422 unsupported_vct: a type some trusted issuer issues",
    ("POST", "/token"): "400 OAuth errors (RFC 6749 §5.2): the code must be a live offer's",
    ("POST", "/credential"): "400 OAuth errors (OpenID4VCI §8.3.1): the proof must verify",
    ("POST", "/presentation-responses/{request_id}"): "400 OAuth errors (OpenID4VP): state "
    "and vp_token must answer a live request",
    ("GET", "/presentation-requests/{request_id}"): "410 request_expired: the request is over",
}

#: Shared settings. A body over the size limit is refused with 413 before it is parsed: a
#: refusal like the others, added to what ``negative_data_rejection`` expects. The long poll
#: answers at once (``wait=0``): fuzzing ``wait`` would only measure the clock. An event
#: stream is read for its first event only. No cache directory.
CONFIG = """
max-stream-events = 1
request-timeout = 20

[cache]
enabled = false

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "428", "429", "5xx"]

[[operations]]
include-path = "/v1/presentation-requests/{request_id}"
include-method = "GET"
parameters = { "query.wait" = 0 }
"""

SEMANTIC_CONFIG = (
    CONFIG
    + """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "410", "422", "429"]
"""
)

MAX_EXAMPLES = 25


def _schemathesis(config: Path, url: str, api_key: str, *filters: str) -> str:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "-H",
        f"Authorization: Bearer {api_key}",
        "--checks",
        "all",
        "--generation-deterministic",
        "-n",
        str(MAX_EXAMPLES),
        "-w",
        "1",
        *filters,
    ]
    done = subprocess.run(
        command, cwd=config.parent, capture_output=True, text=True, timeout=300, check=False
    )
    output = done.stdout + done.stderr
    # The key is in the command line only; Schemathesis prints it as [Filtered] anyway.
    assert api_key not in output
    assert done.returncode == 0, output[-20000:]
    # A run that tested nothing would also exit 0.
    tested = re.search(r"Tested:\s+(\d+)", output)
    generated = re.search(r"(\d+) generated", output)
    assert tested is not None, output[-5000:]
    assert generated is not None, output[-5000:]
    assert int(tested.group(1)) > 0
    assert int(generated.group(1)) > 0
    return output


def _selection(include: bool) -> list[str]:
    """CLI filters selecting exactly the SEMANTIC_VALIDATION operations (or all others)."""
    label = "|".join(re.escape(f"{method} {path}") for method, path in SEMANTIC_VALIDATION)
    return ["--include-name-regex" if include else "--exclude-name-regex", f"^({label})$"]


def test_live_api_conforms_to_its_openapi_document(
    server: BackgroundServer, api_key: str, tmp_path: Path
) -> None:
    strict, semantic = tmp_path / "strict", tmp_path / "semantic"
    strict.mkdir()
    semantic.mkdir()
    (strict / "schemathesis.toml").write_text(CONFIG)
    (semantic / "schemathesis.toml").write_text(SEMANTIC_CONFIG)
    started = time.monotonic()
    everything_else = _schemathesis(
        strict / "schemathesis.toml", server.url, api_key, *_selection(include=False)
    )
    assert re.search(r"Selected:\s+\d+/\d+", everything_else)
    by_design = _schemathesis(
        semantic / "schemathesis.toml", server.url, api_key, *_selection(include=True)
    )
    # Every exemption names an operation that exists: a stale entry fails here.
    assert f"Selected: {len(SEMANTIC_VALIDATION)}/" in by_design
    assert time.monotonic() - started < 120  # bounded: the suite budget is ~90 s in all
