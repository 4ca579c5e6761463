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
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, Response, params, status
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from host.settings import AuthSettings, Scope
from host.signing_keys import KeyPolicy, KeysUnavailable, SigningKeys

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
JWKS_TIMEOUT_SECONDS = 5.0
RETRY_AFTER_SECONDS = 5
MAX_KID_LENGTH = 256
"""Longer key ids are refused unread (the negative cache keeps the ids it saw)."""
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

    One instance per app: it keeps the issuer's signing keys (see `SigningKeys`).
    """

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._keys = [(bytes.fromhex(key.sha256), key.name, key.scope) for key in settings.api_keys]
        self._jwks = (
            SigningKeys(
                settings.oidc_jwks_url,
                KeyPolicy(
                    fetch_timeout=JWKS_TIMEOUT_SECONDS,
                    refresh_after=settings.oidc_jwks_refresh_seconds,
                    unknown_kid_for=settings.oidc_unknown_kid_seconds,
                ),
            )
            if settings.oidc_jwks_url
            else None
        )
        # Callers that wait for the issuer's keys are few at a time; the rest get 503 at once.
        self._verifications = asyncio.Semaphore(settings.oidc_max_concurrent_verifications)
        self._challenge = self._challenges()

    def start(self) -> None:
        """Fetch the issuer's keys in the background (at app start-up)."""
        if self._jwks is not None:
            self._jwks.warm()

    def close(self) -> None:
        if self._jwks is not None:
            self._jwks.close()

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
        if self._verifications.locked():
            logger.warning(
                "too many bearer tokens awaiting verification", extra={"action": "auth_busy"}
            )
            raise _cannot_verify_now()
        try:
            async with self._verifications:
                claims = await self._verify(self._jwks, token)
        except KeysUnavailable:
            raise _cannot_verify_now() from None
        except jwt.PyJWTError as exc:
            # The error's type only: its message could quote parts of the token.
            logger.info(
                "bearer token refused: %s", type(exc).__name__, extra={"action": "auth_refused"}
            )
            raise Unauthenticated(
                "the bearer token is not valid", challenge=self._challenges("invalid_token")
            ) from None
        return self._principal_of(claims)

    async def _verify(self, jwks: SigningKeys, token: str) -> dict[str, Any]:
        """The token's claims, checked against the issuer's key named by its `kid`.

        Raises:
            jwt.PyJWTError: the token is not valid.
            KeysUnavailable: the issuer's keys cannot be fetched.
        """
        kid = jwt.get_unverified_header(token).get("kid")
        if not isinstance(kid, str) or len(kid) > MAX_KID_LENGTH:
            raise jwt.InvalidTokenError("the token names no key the issuer could have")
        signing_key = await jwks.key(kid)
        if signing_key is None:
            raise jwt.InvalidTokenError("the issuer has no such key")
        claims: dict[str, Any] = jwt.decode(
            token,
            signing_key.key,
            algorithms=self._settings.oidc_algorithms,
            audience=self._settings.oidc_audience,
            issuer=self._settings.oidc_issuer,
            leeway=self._settings.oidc_leeway_seconds,
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


def _cannot_verify_now() -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "bearer tokens cannot be verified right now",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _scopes_in(claim: object, settings: AuthSettings) -> list[Scope]:
    """Our scopes in a claim that is a space-separated string or a list of strings."""
    values = claim.split() if isinstance(claim, str) else claim
    if not isinstance(values, list):
        return []
    prefix = settings.oidc_scope_prefix
    names = {v.removeprefix(prefix) for v in values if isinstance(v, str) and v.startswith(prefix)}
    return [scope for scope in Scope if scope.value in names]


LOCAL_CLIENTS = frozenset({ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")})
"""The addresses of this machine's own clients. Not all of 127.0.0.0/8: a sidecar proxy (e.g.
Istio's, from 127.0.0.6) forwards other hosts' requests from there."""


def is_loopback(request: Request) -> bool:
    """Whether the request comes from this machine's own client (127.0.0.1 or ::1)."""
    if request.client is None:
        return False
    try:
        return ipaddress.ip_address(request.client.host) in LOCAL_CLIENTS
    except ValueError:
        return False


def authenticator_of(request: Request) -> Authenticator:
    """The app's authenticator (made by `create_app`)."""
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits callers with `scope` or a higher one and returns them.

    Use it as `dependencies=[Depends(require(Scope.READ))]` or as a parameter; routes with a
    body also need `AuthenticatedRoute`, so that authentication comes before the body.
    """

    async def check(
        request: Request,
        # Declared for the OpenAPI security schemes; `admit` reads the same headers.
        _api_key: Annotated[str | None, Depends(api_key_scheme)],
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Principal:
        return await admit(request, scope)

    check.needed_scope = scope  # type: ignore[attr-defined]
    return check


async def admit(request: Request, scope: Scope) -> Principal:
    """The caller of `request` if their scope is `scope` or higher, authenticated once per
    request.

    Raises:
        HTTPException: 401 without usable credentials, 403 with too low a scope.
    """
    principal: Principal | None = getattr(request.state, "caller", None)
    if principal is None:
        bearer = await bearer_scheme(request)
        token = bearer.credentials if bearer is not None else None
        api_key = await api_key_scheme(request)
        principal = await authenticator_of(request).authenticate(request, api_key, token)
        request.state.caller = principal
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


class AuthenticatedRoute(APIRoute):
    """A route that admits its caller before its body is read: FastAPI parses a JSON body
    before it runs any dependency, so anonymous callers would get 422 for a bad body instead
    of 401, and learn about the route's input from a service they may not use."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        needed = _needed_scope(self.dependencies)
        if needed is None or self.body_field is None:
            return handler

        async def admitted_first(request: Request) -> Response:
            await admit(request, needed)
            return await handler(request)

        return admitted_first


def _needed_scope(dependencies: list[params.Depends]) -> Scope | None:
    scopes = [getattr(d.dependency, "needed_scope", None) for d in dependencies]
    return max((s for s in scopes if s is not None), key=_RANK.__getitem__, default=None)
