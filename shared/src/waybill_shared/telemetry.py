"""OpenTelemetry: a tracer provider per service, OTLP export when the standard
OTEL_* variables ask for it (off by default locally), and instrumentation of the
libraries that cross process boundaries: aio-pika (W3C traceparent in message
headers), SQLAlchemy, urllib3 (the minio client's S3 calls)."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

_configured = False


def otlp_enabled() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "")
    if exporter:
        return "otlp" in exporter.split(",")
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_telemetry(
    service_name: str, *, exporter: SpanExporter | None = None
) -> TracerProvider:
    """Install the tracer provider once per process and instrument the libraries."""
    global _configured
    provider = trace.get_tracer_provider()
    if _configured and isinstance(provider, TracerProvider):
        return provider
    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    if exporter is None and otlp_enabled():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    AioPikaInstrumentor().instrument()
    URLLib3Instrumentor().instrument()
    _configured = True
    return provider


def instrument_engine(engine: AsyncEngine) -> None:
    """Database spans, one per statement, for this engine's sync core."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
