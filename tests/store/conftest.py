"""Every store test that takes ``settings`` runs on one server, a Redis Cluster and a
Sentinel group: the same scripts, keys and transactions must hold on all three."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["single", "cluster", "sentinel"])
def redis_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    if request.param == "cluster":
        return str(request.getfixturevalue("redis_cluster").url)
    if request.param == "sentinel":
        return str(request.getfixturevalue("redis_sentinel").url)
    return redis_url
