"""Who is looking at the dashboard: a signed session cookie (signed in with an API key), an
identity header from a trusted authenticating proxy, or the development mode's anonymous
localhost. Each viewer gets a CSRF token that every form and htmx request carries back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request

from host.auth import Authenticator, is_loopback
from host.settings import Scope, Settings

SESSION_COOKIE = "jobs_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_RANK = {scope: rank for rank, scope in enumerate(Scope)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Viewer:
    """A signed-in person: name (for logs), scope, how they proved it, their CSRF token."""

    name: str
    scope: Scope
    method: str
    csrf: str

    def can(self, needed: Scope) -> bool:
        return _RANK[self.scope] >= _RANK[needed]


class Signer:
    """HMAC-SHA256 signatures of small JSON payloads, and CSRF tokens derived from an identity."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, payload: Mapping[str, object]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def load(self, token: str) -> dict[str, object] | None:
        """The payload of a token this signer made, else None (tampered, foreign, malformed)."""
        body, _, mac = token.partition(".")
        if not mac or not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, binascii.Error):
            return None
        return payload if isinstance(payload, dict) else None

    def csrf_for(self, identity: str) -> str:
        return self._mac("csrf:" + identity)

    def _mac(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())


class DashboardAuth:
    """Finds the viewer of a request, and signs people in with an API key."""

    def __init__(self, settings: Settings, authenticator: Authenticator) -> None:
        self._settings = settings
        self._dashboard = settings.dashboard
        key = self._dashboard.secret_key
        self.signer = Signer(key.encode() if key else secrets.token_bytes(32))
        self._authenticator = authenticator

    def viewer(self, request: Request) -> Viewer | None:
        """The viewer of `request`: session cookie, else trusted proxy, else (development
        mode, loopback only) the anonymous local admin; None when nobody is signed in."""
        return (
            self._from_session(request.cookies.get(SESSION_COOKIE))
            or self._from_proxy(request)
            or self._anonymous(request)
        )

    async def sign_in(self, request: Request, api_key: str) -> str:
        """The session cookie's value for the holder of `api_key`.

        Raises:
            Unauthenticated: the key is not valid.
        """
        principal = await self._authenticator.authenticate(request, api_key, None)
        expires = time.time() + self._dashboard.session_minutes * 60
        return self.signer.sign(
            {"name": principal.name, "scope": principal.scope.value, "exp": expires}
            | {"sid": secrets.token_urlsafe(16)}
        )

    def _from_session(self, cookie: str | None) -> Viewer | None:
        payload = self.signer.load(cookie) if cookie else None
        if payload is None:
            return None
        name, scope, expires = payload.get("name"), payload.get("scope"), payload.get("exp")
        if not isinstance(expires, float | int) or expires < time.time():
            return None
        # A key removed from the settings (or given another scope) ends its sessions.
        if not any(k.name == name and k.scope == scope for k in self._settings.auth.api_keys):
            return None
        sid = str(payload.get("sid"))
        return Viewer(
            name=str(name), scope=Scope(str(scope)), method="session", csrf=self._csrf(sid)
        )

    def _from_proxy(self, request: Request) -> Viewer | None:
        client = request.client.host if request.client else None
        if client is None or client not in self._dashboard.proxy_ips:
            return None
        user = request.headers.get(self._dashboard.proxy_user_header, "").strip()
        groups = request.headers.get(self._dashboard.proxy_groups_header, "")
        scope = self._proxy_scope(groups)
        if not user or scope is None:
            return None
        return Viewer(name=user, scope=scope, method="proxy", csrf=self._csrf("proxy:" + user))

    def _proxy_scope(self, groups: str) -> Scope | None:
        prefix = self._dashboard.proxy_group_prefix
        names = {group.strip() for group in groups.split(",")}
        granted = [scope for scope in Scope if f"{prefix}{scope}" in names]
        return max(granted, key=_RANK.__getitem__) if granted else None

    def _anonymous(self, request: Request) -> Viewer | None:
        if not (self._settings.auth.allow_anonymous_localhost and is_loopback(request)):
            return None
        name = "anonymous-localhost"
        return Viewer(name=name, scope=Scope.ADMIN, method="anonymous", csrf=self._csrf(name))

    def _csrf(self, identity: str) -> str:
        return self.signer.csrf_for(identity)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
