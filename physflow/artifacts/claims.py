"""Claims: when several workers reach the same missing key, at most one computes it.

A claim is a small file ``claims/<key hex>/<generation>`` published create-only (``link`` on a
local or network filesystem, ``If-None-Match: *`` on an object store), holding its owner and an
expiry time. The claim of a key is its highest generation; while that one has not expired,
others wait (and then find the result in the store). A claimant that crashed stops renewing:
once its claim expires, the next worker creates generation + 1 -- create-only again, so of
several workers that all saw the expired claim exactly one wins. Releasing deletes the owner's
own generation and the older ones, never a newer one.

Claims only save work: correctness never depends on them (results are content-addressed and
records are published create-only), so an expired-but-alive claimant that finishes late
merely duplicates work. Expiry compares the claimant's wall clock with the reader's: choose
``ttl`` well above the clock skew between hosts (and above the time a task takes, or call
:meth:`Claim.renew`). Where the store cannot enforce create-only writes (see
:class:`~.remote.ObjectStoreBackend`), claims are not exclusive and :attr:`Claims.exclusive`
is False: every caller computes, as without claims.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from ..core.framing import hex_of

T = TypeVar("T")
CLAIMS_DIR = "claims"


class ClaimInfo(msgspec.Struct, frozen=True):
    owner: str
    host: str
    pid: int
    created: float
    expires: float


class Claim:
    """A claim held by this process; :meth:`release` it when the result is stored."""

    def __init__(self, claims: Claims, key: str, generation: int, info: ClaimInfo) -> None:
        self.claims = claims
        self.key = key
        self.generation = generation
        self.info = info
        self.released = False

    @property
    def rel(self) -> str:
        return self.claims.rel(self.key, self.generation)

    def release(self) -> None:
        """Delete this claim (and older, expired generations); never a newer one."""
        if self.released or self.generation < 0:
            return
        self.released = True
        backend = self.claims.backend
        backend.remove(self.rel)
        for gen in self.claims.generations(self.key):
            if gen < self.generation:
                backend.remove(self.claims.rel(self.key, gen))

    def renew(self, ttl: float) -> bool:
        """Push the expiry ``ttl`` seconds ahead; False when another worker has taken over."""
        if self.claims.generations(self.key)[-1:] != [self.generation]:
            return False
        info = msgspec.structs.replace(self.info, expires=self.claims.clock() + ttl)
        self.claims.backend.write_atomic(self.rel, msgspec.json.encode(info))
        self.info = info
        return True

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Claims:
    """Claims on the keys of one store (``Claims(store)``); see the module docstring."""

    def __init__(self, store: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.backend = store.backend if hasattr(store, "backend") else store
        self.clock = clock
        self.owner = uuid.uuid4().hex
        #: Whether claims are exclusive here (create-only writes are enforced by the store).
        self.exclusive = bool(getattr(self.backend, "conditional", False))

    @staticmethod
    def rel(key: str, generation: int) -> str:
        h = hex_of(key)
        return f"{CLAIMS_DIR}/{h[:2]}/{h}/{generation:010d}"

    def generations(self, key: str) -> list[int]:
        h = hex_of(key)
        names = self.backend.listdir(f"{CLAIMS_DIR}/{h[:2]}/{h}")
        return sorted(int(n) for n in names if n.isdigit())

    def _read(self, key: str, generation: int) -> ClaimInfo | bool | None:
        """The claim's content; None when gone; False when damaged (counts as expired)."""
        try:
            data = self.backend.read(self.rel(key, generation))
        except FileNotFoundError:
            return None
        try:
            return msgspec.json.decode(data, type=ClaimInfo)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False

    def holder(self, key: str) -> ClaimInfo | None:
        """Who holds a live claim on ``key`` (None: nobody, or the claim expired)."""
        gens = self.generations(key)
        if not gens:
            return None
        info = self._read(key, gens[-1])
        if isinstance(info, ClaimInfo) and info.expires > self.clock():
            return info
        return None

    def try_claim(self, key: str, ttl: float = 600.0) -> Claim | None:
        """Claim ``key`` for ``ttl`` seconds; None when a live claim of another worker exists.

        Where claims are not exclusive, returns a claim that excludes nobody.
        """
        now = self.clock()
        info = ClaimInfo(self.owner, socket.gethostname(), os.getpid(), now, now + ttl)
        if not self.exclusive:
            return Claim(self, key, -1, info)
        for _attempt in range(8):
            gens = self.generations(key)
            nxt = 0
            if gens:
                found = self._read(key, gens[-1])
                if found is None:
                    continue  # released meanwhile: look again
                if isinstance(found, ClaimInfo) and found.expires > self.clock():
                    return None
                nxt = gens[-1] + 1
            if self.backend.create(self.rel(key, nxt), msgspec.json.encode(info)):
                return Claim(self, key, nxt, info)
        return None

    def wait(
        self,
        key: str,
        *,
        done: Callable[[], bool] | None = None,
        poll: float = 0.05,
        timeout: float | None = None,
    ) -> bool:
        """Wait while another worker holds ``key``; True once ``done()`` is true, False when
        the claim went away (released or expired) without it, or after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = poll
        while True:
            if done is not None and done():
                return True
            if self.holder(key) is None:
                return bool(done is not None and done())
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def run_once(
        self,
        key: str,
        lookup: Callable[[], T | None],
        compute: Callable[[], T],
        *,
        ttl: float = 600.0,
        poll: float = 0.05,
    ) -> tuple[T, bool]:
        """``lookup()`` if it has a result, else compute it here unless another worker is
        already on it (then wait for its result). Returns (value, computed here)."""
        while True:
            found = lookup()
            if found is not None:
                return found, False
            claim = self.try_claim(key, ttl)
            if claim is not None:
                with claim:
                    found = lookup()  # the previous holder may have just finished
                    if found is not None:
                        return found, False
                    return compute(), True
            self.wait(key, done=lambda: lookup() is not None, poll=poll)
