"""What verification may remember between presentations, and nothing else.

A citizen presents the same credential again and again; only the key-binding JWT is new each
time. Three results depend on nothing but the exact bytes they were computed from, so they
are kept, keyed by those bytes (or a SHA-256 of them):

* that an issuer's signature over an exact signing input holds under an exact public key
  (only successes are kept; a failure is always recomputed);
* a holder's public key parsed from its exact JWK members (strict parsing, done once);
* a disclosure decoded from its exact base64url text, with its digest;
* an issuer-signed JWT parsed (strictly) from its exact text, for the ``typ`` values allowed;
* the claims an exact issuer-signed payload yields with an exact list of disclosures.

What is kept is shared by every verification that finds it, so it is read-only by contract:
nothing on the verification path changes a payload or a claims mapping it was given (new
mappings are built instead). Only successes are kept: a parse or disclosure that fails is
recomputed, so its failure is always reported in full.

Every check that uses them still runs on every presentation: which key a ``kid`` names, the
key's revocation, ``typ``, time claims, each disclosure's place and uniqueness, the KB-JWT's
signature, ``sd_hash``, nonce and audience. Each table is a bounded LRU; a verifier that is
given no :class:`Memo` recomputes everything.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

__all__ = ["Memo"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_ENTRIES: Final = 10_000
#: Parsed tokens and their disclosed claims are a few kilobytes of objects each: fewer.
DEFAULT_PARSED_ENTRIES: Final = 2_000


class _Lru(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class Memo:
    def __init__(
        self, entries: int = DEFAULT_ENTRIES, parsed_entries: int = DEFAULT_PARSED_ENTRIES
    ) -> None:
        self._signatures: _Lru[bytes, bool] = _Lru(entries)
        self.holder_keys: _Lru[tuple[tuple[str, str], ...], object] = _Lru(entries)
        self.disclosures: _Lru[str, object] = _Lru(entries * 4)
        self.tokens: _Lru[tuple[str, frozenset[str]], object] = _Lru(parsed_entries)
        self.resolutions: _Lru[tuple[str, tuple[str, ...]], object] = _Lru(parsed_entries)

    @staticmethod
    def remembered(table: _Lru[K, object], key: K, compute: Callable[[], V]) -> V:
        """``compute()``, or what it returned before for ``key``; an exception it raises
        passes through and nothing is kept."""
        found = table.get(key)
        if found is not None:
            return found  # type: ignore[return-value]  # each table holds one kind
        value = compute()
        table.put(key, value)
        return value

    def signature_holds(
        self,
        fingerprint: bytes,
        signing_input: bytes,
        signature: bytes,
        verify: Callable[[], bool],
    ) -> bool:
        """``verify()``, remembered when it is True for these exact bytes and key."""
        digest = hashlib.sha256(fingerprint)
        digest.update(len(signing_input).to_bytes(4, "big"))
        digest.update(signing_input)
        digest.update(signature)
        key = digest.digest()
        if self._signatures.get(key):
            return True
        holds = verify()
        if holds:
            self._signatures.put(key, True)
        return holds
