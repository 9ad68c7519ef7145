"""Pure logic: no I/O, no clock, no Redis. Everything here is fast to unit-test."""
