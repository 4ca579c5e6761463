"""OpenTelemetry tracing: the SDK is configured here, only when an exporter is chosen.

The rest of the code uses the OpenTelemetry API alone, which is a no-op until this runs; the
SDK and its exporters are the optional `otel` extra, imported only here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from opentelemetry import trace

from host.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

logger = logging.getLogger(__name__)


class TracingUnavailable(RuntimeError):
    """An exporter is configured but the OpenTelemetry SDK is not installed."""


def configure_tracing(settings: Settings) -> None:
    """Send spans to `settings.tracing.exporter`: `otlp` (configured by the standard
    `OTEL_EXPORTER_OTLP_*` variables) or `console` (stdout). Does nothing for `none`, nor
    when an SDK tracer provider is already set (by an earlier call, or an embedding program).

    Raises:
        TracingUnavailable: the `otel` extra is not installed.
    """
    if settings.tracing.exporter == "none":
        return
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        exporter = _exporter(settings.tracing.exporter)
    except ImportError as exc:
        raise TracingUnavailable(
            f"APP_TRACING__EXPORTER={settings.tracing.exporter} needs the OpenTelemetry SDK: "
            "install the `otel` extra (pip install 'jobs-service[otel]')"
        ) from exc
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # the global provider can be set only once per process
    resource = Resource.create({SERVICE_NAME: settings.tracing.service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    logger.info(
        "spans exported to %s", settings.tracing.exporter, extra={"action": "tracing_configured"}
    )


def _exporter(name: str) -> SpanExporter:
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return ConsoleSpanExporter()
