"""The anchor: the least a FastAPI service can do for each thing Thiqa is measured on.

Started by ``bench/run.py`` with ``uvicorn bench.anchor:create --factory`` and the same
server options as ``thiqa serve``, on the same redis-server:

* ``POST /verify``: a pydantic body, PyJWT ES256 verification of a plain JWT of about the
  size of Thiqa's presentation, one async Redis GET;
* ``POST /verify/batch``: the same for up to 100 tokens, one MGET;
* ``GET /list``: one Redis GET of a ready-made blob the size of a published status list;
* ``POST /issue``: a pydantic body, one PyJWT ES256 signature, one Redis INCR.

No authentication, audit, metrics, headers or strict JSON: a floor to compare with, not a
service anyone should run.
"""

from __future__ import annotations

import os

import jwt
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, HTTPException, Response
from pydantic import BaseModel, Field

__all__ = ["create"]

#: Redis keys the anchor reads and writes; bench/run.py fills them.
FLAG_KEY = "anchor:{a}:flag"
LIST_KEY = "anchor:{a}:list"
COUNTER_KEY = "anchor:{a}:issued"


class VerifyBody(BaseModel):
    token: str = Field(max_length=60 * 1024)


class BatchBody(BaseModel):
    tokens: list[str] = Field(max_length=100)


class IssueBody(BaseModel):
    claims: dict[str, object]


def create() -> FastAPI:
    redis = aioredis.from_url(os.environ["ANCHOR_REDIS_URL"])
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), bytes.fromhex(os.environ["ANCHOR_PUBLIC_KEY"])
    )
    private_key = ec.generate_private_key(ec.SECP256R1())
    app = FastAPI()

    @app.post("/verify")
    async def verify(body: VerifyBody) -> dict[str, object]:
        try:
            claims = jwt.decode(body.token, public_key, algorithms=["ES256"])
        except jwt.PyJWTError as exc:
            raise HTTPException(400, "invalid token") from exc
        flag = await redis.get(FLAG_KEY)
        return {"valid": flag == b"0", "claims": claims}

    @app.post("/verify/batch")
    async def verify_batch(body: BatchBody) -> list[dict[str, object]]:
        verdicts = []
        for token in body.tokens:
            try:
                verdicts.append(jwt.decode(token, public_key, algorithms=["ES256"]))
            except jwt.PyJWTError as exc:
                raise HTTPException(400, "invalid token") from exc
        flags = await redis.mget([FLAG_KEY] * len(verdicts))
        return [{"valid": f == b"0", "claims": c} for f, c in zip(flags, verdicts, strict=True)]

    @app.get("/list")
    async def status_list() -> Response:
        return Response(await redis.get(LIST_KEY), media_type="application/statuslist+jwt")

    @app.post("/issue", status_code=201)
    async def issue(body: IssueBody) -> dict[str, object]:
        serial = await redis.incr(COUNTER_KEY)
        token = jwt.encode({**body.claims, "sub": str(serial)}, private_key, algorithm="ES256")
        return {"credential": token}

    return app
