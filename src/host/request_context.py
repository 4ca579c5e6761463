"""Per-request context: a request id bound to the request's logs, and a SERVER span that
continues the caller's W3C trace, so a job enqueued by the request joins that trace."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import propagate, trace
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bound_contextvars

REQUEST_ID_HEADER = "X-Request-ID"
# a caller's id is reused only if it cannot forge log fields or bloat them
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

_tracer = trace.get_tracer("host.http")


def request_id_of(headers: Headers) -> str:
    """The caller's request id if it is a sane token, else a new one."""
    given = headers.get(REQUEST_ID_HEADER, "")
    return given if _SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class RequestContextMiddleware:
    """Binds `request_id` to the logs of each HTTP request (returned as `X-Request-ID`) and
    runs the request inside a SERVER span."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = request_id_of(headers)
        with bound_contextvars(request_id=request_id), _server_span(scope, headers) as span:

            async def send_with_context(message: Message) -> None:
                if message["type"] == "http.response.start":
                    if span is not None:
                        _describe_response(span, scope, message)
                    MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
                await send(message)

            await self.app(scope, receive, send_with_context)


@contextmanager
def _server_span(scope: Scope, headers: Headers) -> Iterator[trace.Span | None]:
    """A SERVER span continuing the caller's trace, unless one is already open: FastAPI opens
    its own when an SDK is configured (its native telemetry), and two would nest."""
    if trace.get_current_span().get_span_context().is_valid:
        yield None
        return
    method, path = scope["method"], scope["path"]
    with _tracer.start_as_current_span(
        f"{method} {path}",
        context=propagate.extract(headers),
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path},
    ) as span:
        yield span


def _describe_response(span: trace.Span, scope: Scope, message: Message) -> None:
    """Name the span after the route template (known once routing ran: low cardinality,
    unlike the path) and record the status."""
    route = getattr(scope.get("route"), "path", None)
    if route:
        span.update_name(f"{scope['method']} {route}")
        span.set_attribute("http.route", route)
    status = message["status"]
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(trace.StatusCode.ERROR)
