"""Unit tests of service.core (a package, so helpers import relatively and test module
names cannot collide with same-named modules under tests/store or tests/api)."""
