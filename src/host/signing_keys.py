"""The OIDC issuer's signing keys (its JWKS), fetched and refreshed in the background.

Fetching is blocking HTTP, so it runs on an executor of its own, never on the event loop's
default thread pool: the SQL store runs its transactions there, and a slow identity provider
must not delay API reads, heartbeats, claims or finish writes. One fetch runs at a time; a
caller never waits for one when the key it needs is known, and tokens naming a key the issuer
does not have are refused from a short negative cache instead of fetching again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import jwt

logger = logging.getLogger(__name__)

MAX_UNKNOWN_KIDS = 1024
"""Unknown key ids remembered at most (tokens are the caller's: any id can be sent)."""


class KeysUnavailable(Exception):
    """The issuer's keys cannot be fetched right now (none known, or the fetch failed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyPolicy:
    fetch_timeout: float
    """Seconds a fetch may take, and a caller may wait for it."""
    refresh_after: float
    """Age of the key set after which it is refreshed in the background."""
    unknown_kid_for: float
    """How long a key id the issuer lacked is refused without fetching again."""
    min_fetch_interval: float = 5.0
    """Fetches asked for by callers start at most this often (failed ones included)."""


class SigningKeys:
    """The issuer's current signing keys by key id (`kid`)."""

    def __init__(self, url: str, policy: KeyPolicy) -> None:
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=policy.fetch_timeout)
        self._policy = policy
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jwks-fetch")
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._fetch: asyncio.Task[bool] | None = None
        self._unknown: OrderedDict[str, float] = OrderedDict()

    def warm(self) -> None:
        """Start fetching the keys, so the first caller with a token finds them."""
        self._start_fetch()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The signing key `kid`, or None when the issuer has no such key.

        Raises:
            KeysUnavailable: the keys cannot be fetched, and `kid` is not known.
        """
        now = time.monotonic()
        if self._fetched_at is None or now - self._fetched_at > self._policy.refresh_after:
            self._start_fetch()  # the known keys still serve meanwhile
        if (known := self._keys.get(kid)) is not None:
            return known
        if self._unknown.get(kid, 0.0) > now:
            return None
        if not await self._fetched():
            raise KeysUnavailable("the issuer's signing keys cannot be fetched")
        found = self._keys.get(kid)
        if found is None:
            self._remember_unknown(kid)
        return found

    def close(self) -> None:
        if self._fetch is not None:
            self._fetch.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _fetched(self) -> bool:
        """Wait for a fetch (the running one, or a new one unless one started just now);
        True if the keys are fresh from it or from a fetch that just succeeded."""
        fetch = self._fetch if self._fetch is not None else self._start_fetch()
        if fetch is None:
            return self._fetched_at is not None and self._fetched_at == self._attempted_at
        try:
            return await asyncio.wait_for(asyncio.shield(fetch), self._policy.fetch_timeout)
        except TimeoutError:
            return False

    def _start_fetch(self) -> asyncio.Task[bool] | None:
        if self._fetch is not None:
            return self._fetch
        now = time.monotonic()
        if self._attempted_at is not None and (
            now - self._attempted_at < self._policy.min_fetch_interval
        ):
            return None
        self._attempted_at = now
        self._fetch = asyncio.get_running_loop().create_task(self._run_fetch(now))
        return self._fetch

    async def _run_fetch(self, started: float) -> bool:
        loop = asyncio.get_running_loop()
        try:
            jwk_set = await loop.run_in_executor(self._executor, self._client.get_jwk_set, True)
        except Exception as exc:  # a network error, a bad document: the known keys stay
            logger.warning(
                "the issuer's signing keys cannot be fetched: %s",
                type(exc).__name__,
                extra={"action": "jwks_fetch_failed"},
            )
            return False
        finally:
            self._fetch = None
        self._keys = {
            key.key_id: key
            for key in jwk_set.keys
            if key.key_id and key.public_key_use in ("sig", None)
        }
        self._fetched_at = started
        self._unknown.clear()
        return True

    def _remember_unknown(self, kid: str) -> None:
        self._unknown[kid] = time.monotonic() + self._policy.unknown_kid_for
        self._unknown.move_to_end(kid)
        while len(self._unknown) > MAX_UNKNOWN_KIDS:
            self._unknown.popitem(last=False)
