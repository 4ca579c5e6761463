"""Who is calling, and may they: API keys and OIDC bearer JWTs, mapped to scopes.

A route asks for a scope with `Depends(require(Scope.WRITE))`; the dependency returns the
caller's `Principal`. No credentials, or credentials that do not check out, get 401; a caller
whose scope is too low gets 403. Keys and tokens are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from host.settings import AuthSettings, Scope

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
JWKS_TIMEOUT_SECONDS = 5.0
REALM = "jobs-service"
_RANK = {scope: rank for rank, scope in enumerate(Scope)}

api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="An API key (see `jobs-service api-key`)."
)
bearer_scheme = HTTPBearer(auto_error=False, description="A JWT from the configured OIDC issuer.")


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated caller: who (for logs), what they may do, and how they proved it."""

    name: str
    scope: Scope
    method: str

    def allows(self, needed: Scope) -> bool:
        return _RANK[self.scope] >= _RANK[needed]


class Unauthenticated(HTTPException):
    """401: no credentials, or credentials that do not check out."""

    def __init__(self, detail: str, *, challenge: str) -> None:
        super().__init__(
            status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge}
        )


class Authenticator:
    """Checks the credentials of a request against the auth settings.

    One instance per app: its JWKS client caches the issuer's signing keys.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._keys = [(bytes.fromhex(key.sha256), key.name, key.scope) for key in settings.api_keys]
        self._jwks = (
            jwt.PyJWKClient(settings.oidc_jwks_url, timeout=JWKS_TIMEOUT_SECONDS)
            if settings.oidc_jwks_url
            else None
        )
        self._challenge = self._challenges()

    def _challenges(self, bearer_error: str | None = None) -> str:
        """`WWW-Authenticate`: the ways to authenticate, and what was wrong with a token."""
        challenges = [f'APIKey header="{API_KEY_HEADER}"']
        if self._jwks is not None:
            error = f', error="{bearer_error}"' if bearer_error else ""
            challenges.append(f'Bearer realm="{REALM}"{error}')
        return ", ".join(challenges)

    async def authenticate(
        self, request: Request, api_key: str | None, bearer: str | None
    ) -> Principal:
        """The caller of `request`, from its API key, else its bearer token, else (in
        development mode, from loopback only) the anonymous local admin.

        Raises:
            Unauthenticated: no usable credentials.
        """
        if api_key is not None:
            return self._check_key(api_key)
        if bearer is not None:
            return await self._check_token(bearer)
        if self._settings.allow_anonymous_localhost and is_loopback(request):
            return Principal(name="anonymous-localhost", scope=Scope.ADMIN, method="anonymous")
        raise Unauthenticated("credentials are required", challenge=self._challenge)

    def _check_key(self, presented: str) -> Principal:
        digest = hashlib.sha256(presented.encode()).digest()
        # Compare with every key, so the time taken does not tell which one (if any) matched.
        matches = [
            (name, scope)
            for stored, name, scope in self._keys
            if hmac.compare_digest(stored, digest)
        ]
        if not matches:
            logger.info("unknown API key refused", extra={"action": "auth_refused"})
            raise Unauthenticated("the API key is not valid", challenge=self._challenge)
        name, scope = matches[0]
        return Principal(name=name, scope=scope, method="api_key")

    async def _check_token(self, token: str) -> Principal:
        if self._jwks is None:
            raise Unauthenticated("bearer tokens are not accepted", challenge=self._challenge)
        try:
            claims = await self._verify(self._jwks, token)
        except jwt.PyJWKClientConnectionError:
            logger.warning("the issuer's signing keys cannot be fetched", exc_info=True)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "bearer tokens cannot be verified right now"
            ) from None
        except jwt.PyJWTError as exc:
            # The error's type only: its message could quote parts of the token.
            logger.info(
                "bearer token refused: %s", type(exc).__name__, extra={"action": "auth_refused"}
            )
            raise Unauthenticated(
                "the bearer token is not valid", challenge=self._challenges("invalid_token")
            ) from None
        return self._principal_of(claims)

    async def _verify(self, jwks: jwt.PyJWKClient, token: str) -> dict[str, Any]:
        # Fetching the JWKS is blocking I/O (on a cache miss), so it runs in a thread.
        signing_key = await asyncio.to_thread(jwks.get_signing_key_from_jwt, token)
        claims: dict[str, Any] = jwt.decode(
            token,
            signing_key.key,
            algorithms=self._settings.oidc_algorithms,
            audience=self._settings.oidc_audience,
            issuer=self._settings.oidc_issuer,
            options={"require": ["exp", "iss", "aud"]},
        )
        return claims

    def _principal_of(self, claims: Mapping[str, Any]) -> Principal:
        name = str(claims.get("sub") or claims.get("client_id") or "unknown")
        scopes = _scopes_in(claims.get(self._settings.oidc_scope_claim), self._settings)
        if not scopes:
            logger.info("token of %s has no jobs scope", name, extra={"action": "auth_denied"})
            raise HTTPException(status.HTTP_403_FORBIDDEN, "the token grants no jobs scope")
        return Principal(name=name, scope=max(scopes, key=_RANK.__getitem__), method="jwt")


def _scopes_in(claim: object, settings: AuthSettings) -> list[Scope]:
    """Our scopes in a claim that is a space-separated string or a list of strings."""
    values = claim.split() if isinstance(claim, str) else claim
    if not isinstance(values, list):
        return []
    prefix = settings.oidc_scope_prefix
    names = {v.removeprefix(prefix) for v in values if isinstance(v, str) and v.startswith(prefix)}
    return [scope for scope in Scope if scope.value in names]


def is_loopback(request: Request) -> bool:
    if request.client is None:
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


def authenticator_of(request: Request) -> Authenticator:
    """The app's authenticator, made on first use from the container's settings."""
    state = request.app.state
    authenticator: Authenticator | None = getattr(state, "authenticator", None)
    if authenticator is None:
        authenticator = Authenticator(state.container.settings().auth)
        state.authenticator = authenticator
    return authenticator


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits callers with `scope` or a higher one and returns them.

    Use it as `dependencies=[Depends(require(Scope.READ))]` or as a parameter.
    """

    async def check(
        request: Request,
        authenticator: Annotated[Authenticator, Depends(authenticator_of)],
        api_key: Annotated[str | None, Depends(api_key_scheme)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Principal:
        token = bearer.credentials if bearer is not None else None
        principal = await authenticator.authenticate(request, api_key, token)
        request.state.principal = principal.name
        if not principal.allows(scope):
            logger.info(
                "%s (scope %s) denied a %s route",
                principal.name,
                principal.scope,
                scope,
                extra={"action": "auth_denied", "principal": principal.name},
            )
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {scope} scope")
        return principal

    return check
