"""OpenTelemetry traces in: OTLP/JSON files read, checked and mapped to Weave calls."""
