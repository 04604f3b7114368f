"""OpenTelemetry: when the standard OTEL_* variables ask for OTLP export (off by
default locally), a tracer provider per service and instrumentation of the libraries
that cross process boundaries: aio-pika (W3C traceparent in message headers),
asyncpg (every database statement, the ORM's included), urllib3 (the minio client's S3 calls).

Without an exporter nothing is installed: the API's no-op tracer costs nothing,
whereas recording spans nobody exports cost a tenth of a tiny export's CPU."""

from __future__ import annotations

import os

from opentelemetry import trace

_configured = False


def otlp_enabled() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "")
    if exporter:
        return "otlp" in exporter.split(",")
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_telemetry(service_name: str) -> bool:
    """Install the tracer provider once per process and instrument the libraries;
    returns whether traces are exported."""
    global _configured
    if _configured or not otlp_enabled():
        return _configured
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    AioPikaInstrumentor().instrument()
    AsyncPGInstrumentor().instrument()
    URLLib3Instrumentor().instrument()
    _configured = True
    return True
