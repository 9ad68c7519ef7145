"""The key ring of a running server, following ``keys/`` without a restart.

``thiqa keys rotate`` and ``thiqa keys revoke`` run in another process and change
``keyring.json``. Each server process (every worker on its own) re-reads the index at most
once a second, on the request path: one small read, compared byte for byte with the last one,
so the check costs no Redis round trip and does not depend on file-time granularity. Only a
changed index is parsed, and only keys new to this process are decrypted. A pending key's
activation time is applied at the same check, so every process switches keys at the same
second without anyone rewriting the file.

A change is therefore seen at most ``CHECK_INTERVAL`` seconds after the command wrote it.

What the index says is applied even when a key file it names cannot be loaded (written by
another user with mode 0600, or with another passphrase): a revocation never depends on
loading a private key. A published key that cannot be loaded neither signs nor verifies; if
it is the signing key, nothing is signed (``keyring_unavailable``, 503) rather than signed by
the key it replaced. An index that cannot be read or parsed at all (a bad hand edit) leaves
the last good ring in use for verification, but stops signing too: the index may revoke the
key in use, and signing with it would be the one thing worse than not signing. Either way
:attr:`KeyRingHolder.problem` says what is wrong, ``/ready`` answers 503 and the metrics show
it, logged once per bad version.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Final

from service.core.verify import TrustedIssuer
from service.keyring.keyring import (
    INDEX,
    ChainLoader,
    KeyRing,
    KeyRingError,
    StoredRing,
    load_or_create,
    read_ring,
)

__all__ = ["CHECK_INTERVAL", "KeyRingHolder", "LiveTrust"]

#: Seconds between two looks at ``keyring.json``: a revocation reaches every process within
#: this, and the request path pays for one file read per interval, not per request.
CHECK_INTERVAL: Final = 1.0

log = logging.getLogger("thiqa.keys")


UNKNOWN_KID_INTERVAL = 0.2


class KeyRingHolder:
    """The current :class:`KeyRing` of ``keys_dir``; :meth:`current` is cheap enough to call
    on every request."""

    def __init__(
        self,
        keys_dir: Path,
        *,
        alg: str = "ES256",
        passphrase: bytes | None = None,
        interval: float = CHECK_INTERVAL,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        chains: ChainLoader | None = None,
    ) -> None:
        self._dir = keys_dir
        self._passphrase = passphrase
        self._interval = interval
        self._clock = clock
        self._monotonic = monotonic
        self._chains = chains
        self._lock = threading.Lock()
        first = load_or_create(keys_dir, alg=alg, passphrase=passphrase, chains=chains)
        self._data = (keys_dir / INDEX).read_bytes()
        self._bad: bytes | None = None
        # Parse the bytes just read: the file may have changed since load_or_create read it.
        self._stored: StoredRing = read_ring(
            keys_dir,
            passphrase,
            index=self._data,
            known=first.keys,
            chains=chains,
            lenient=True,
        )
        #: Why the ring in use is not exactly what keys/ says, or None when it is.
        self._index_problem: str | None = None
        self._view: KeyRing = self._stored.at(int(clock()))
        self._next_check = monotonic() + interval
        self._last_forced = float("-inf")

    def current(self) -> KeyRing:
        if self._monotonic() >= self._next_check and self._lock.acquire(blocking=False):
            # Another thread already checking: it will publish the result; use the last view.
            try:
                self._check()
            finally:
                self._lock.release()
        return self._view

    def refresh_for_unknown_kid(self) -> bool:
        """A token names a kid this process does not know: another process may have just
        rotated (RFC 8725 pitfall: verifiers must refresh keys on an unknown kid). Re-read
        now, at most every ``UNKNOWN_KID_INTERVAL`` seconds so unknown kids cannot make every
        request read the disk; True if the ring changed."""
        now = self._monotonic()
        if now - self._last_forced < UNKNOWN_KID_INTERVAL:
            return False
        self._last_forced = now
        before = self._view
        self.refresh()
        return self._view is not before

    @property
    def problem(self) -> str | None:
        """Why this process cannot do all the index asks (a key file it cannot load, an
        index it cannot read), or None. Shown by ``/ready`` and the metrics."""
        ring = self.current()
        if self._index_problem is not None:
            return self._index_problem
        if ring.unloadable:
            return f"{len(ring.unloadable)} published key file(s) cannot be loaded"
        return None

    def refresh(self) -> KeyRing:
        """Check now, whatever the interval (tests, and an operator's signal handler)."""
        with self._lock:
            self._check()
        return self._view

    def _check(self) -> None:
        self._next_check = self._monotonic() + self._interval
        readable = True
        try:
            data = (self._dir / INDEX).read_bytes()
        except OSError as exc:
            readable = False
            if self._bad != b"":
                log.error("cannot read %s (%s); signing stops until it can", INDEX, exc.strerror)
                self._bad = b""
                self._fail(f"{INDEX} cannot be read")
            data = self._data
        else:
            if self._bad == b"":
                self._bad = None  # readable again: a later failure is worth a new line
        changed = False
        if readable and self._index_problem is not None and data == self._data:
            # Readable again and what was last loaded (a bad edit undone): sign again.
            self._index_problem, changed = None, True
        # A key file that could not be loaded is tried again each interval: fixing its owner
        # or mode must be enough, with no change to the index.
        retry = readable and data == self._data and bool(self._stored.unloadable)
        if (data != self._data and data != self._bad) or retry:
            try:
                stored = read_ring(
                    self._dir,
                    self._passphrase,
                    index=data,
                    known=self._stored.private,
                    chains=self._chains,
                    lenient=True,
                )
            except KeyRingError as exc:
                log.error("%s changed but cannot be parsed (%s); signing stops", INDEX, exc)
                self._bad = data
                self._fail(f"{INDEX} cannot be parsed")
            else:
                if not retry or stored.unloadable != self._stored.unloadable:
                    changed = True
                    for kid, reason in stored.unloadable.items():
                        log.error(
                            "key %s cannot be loaded (%s); it neither signs nor verifies",
                            kid,
                            reason,
                        )
                self._stored, self._data, self._bad = stored, data, None
                self._index_problem = None
        now = int(self._clock())
        pending_due = self._view.next_change is not None and now >= self._view.next_change
        if changed or pending_due:
            before = self._view.active_kid
            self._view = self._stored.at(now)
            if self._index_problem is not None:
                self._view = replace(self._view, signer=None)
            log.info(
                "key ring reloaded: signing key %s (was %s)%s, %d published, %d revoked",
                self._view.active_kid,
                before,
                "" if self._view.signer else " cannot be loaded: nothing is signed",
                len(self._view.keys),
                len(self._view.revoked),
            )

    def _fail(self, problem: str) -> None:
        """Keep the last good ring for verification, but sign nothing until the index reads
        again: it may revoke the very key in use."""
        self._index_problem = problem
        self._view = replace(self._view, signer=None)


class LiveTrust(Mapping[str, TrustedIssuer]):
    """The verifier's trust map: other issuers as loaded at start, and this issuer with the
    keys of the current ring (revoked ones named, so they fail as ``key_revoked``)."""

    def __init__(
        self,
        others: Mapping[str, TrustedIssuer],
        *,
        own: str,
        types: frozenset[str],
        keys: KeyRingHolder,
    ) -> None:
        self._others = dict(others)
        self._own = own
        self._types = types
        self._keys = keys
        self._ring: KeyRing | None = None
        self._table: dict[str, TrustedIssuer] = {}

    def _current(self) -> dict[str, TrustedIssuer]:
        ring = self._keys.current()
        if ring is not self._ring:  # rebuilt only when the ring changed
            table = dict(self._others)
            table[self._own] = TrustedIssuer(
                identifier=self._own,
                keys=ring.verification_keys(),
                types=self._types,
                revoked_kids=ring.revoked,
            )
            self._table, self._ring = table, ring
        return self._table

    def __getitem__(self, issuer: str) -> TrustedIssuer:
        return self._current()[issuer]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())
