"""Tests of service.store against a real redis-server (a package, so module names such as
``test_status`` cannot collide with same-named modules under tests/core or tests/api)."""
